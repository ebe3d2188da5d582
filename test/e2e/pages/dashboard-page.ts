import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';

export type ViewName = 'Overview' | 'Apps' | 'Sessions' | 'Uplinks' | 'Settings';

/** Where screenshots go (git-ignored), kept with the test results. */
export const SCREENSHOT_DIR = join(process.cwd(), 'test-results/e2e');

/** The dashboard shell: tabs, status bar, panel. */
export class DashboardPage {
  constructor(readonly page: Page) {}

  async open(url: string): Promise<void> {
    await this.page.goto(url);
    await this.page.getByRole('tab', { name: 'Overview' }).waitFor();
    await this.page.locator('[data-uplink]').first().waitFor();
  }

  async show(view: ViewName): Promise<void> {
    await this.page.getByRole('tab', { name: view }).click();
    await this.page.locator(`main[data-view="${view.toLowerCase()}"]`).waitFor();
  }

  get panel(): Locator {
    return this.page.getByRole('tabpanel');
  }

  async screenshot(name: string): Promise<string> {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const path = join(SCREENSHOT_DIR, `${name}.png`);
    await this.page.screenshot({ path, fullPage: true });
    return path;
  }
}
