import type { Locator, Page } from 'playwright-core';

export type SliderName = 'lossVsThroughput' | 'latencyVsThroughput';

/** The Apps view: one card per app with its rule's controls. */
export class AppsPage {
  constructor(readonly page: Page) {}

  app(appId: string): Locator {
    return this.page.locator(`article[data-app="${appId}"]`);
  }

  slider(appId: string, name: SliderName): Locator {
    return this.app(appId).locator(`input[type="range"][name="${name}"]`);
  }

  bypassSwitch(appId: string): Locator {
    return this.app(appId).getByRole('switch');
  }

  async doing(appId: string): Promise<string> {
    return (await this.app(appId).getByTestId('doing').textContent()) ?? '';
  }

  /**
   * Drags the slider's thumb with the mouse from where it is to `fraction` (0..1) of
   * the track: press on the thumb, move in steps, release — as a user does.
   */
  async drag(appId: string, name: SliderName, fraction: number): Promise<void> {
    const slider = this.slider(appId, name);
    await slider.scrollIntoViewIfNeeded();
    const box = await slider.boundingBox();
    if (box === null) throw new Error(`slider ${name} of ${appId} is not visible`);
    const value = Number(await slider.inputValue()) / 100;
    // Chromium's thumb is ~16 px wide; its centre runs from 8 px to width - 8 px.
    const xAt = (f: number): number => box.x + 8 + f * (box.width - 16);
    const y = box.y + box.height / 2;
    const mouse = this.page.mouse;
    await mouse.move(xAt(value), y);
    await mouse.down();
    await mouse.move(xAt(fraction), y, { steps: 12 });
    await mouse.up();
  }
}
