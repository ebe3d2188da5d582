import type { Locator, Page } from 'playwright-core';

export type Metric = 'latency' | 'jitter' | 'loss' | 'throughput';

/** The Overview: one card per uplink, with live values and sparklines. */
export class OverviewPage {
  constructor(readonly page: Page) {}

  card(uplinkId: string): Locator {
    return this.page.locator(`article[data-uplink="${uplinkId}"]`);
  }

  async uplinkIds(): Promise<string[]> {
    const cards = await this.page.locator('article[data-uplink]').all();
    return Promise.all(cards.map(async (c) => (await c.getAttribute('data-uplink')) ?? ''));
  }

  async value(uplinkId: string, metric: Metric): Promise<string> {
    return (await this.card(uplinkId).locator(`dd[data-metric="${metric}"]`).textContent()) ?? '';
  }

  /** The drawn path of one chart series, e.g. ('wlan0', 'latency'). */
  async chartPath(uplinkId: string, series: string): Promise<string> {
    return (
      (await this.card(uplinkId).locator(`path.line-${series}`).first().getAttribute('d')) ?? ''
    );
  }
}
