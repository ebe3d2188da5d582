import { parseArgs } from 'node:util';
import { BraidHost } from '../core/host/host.js';
import { startDashboardServer } from '../core/host/dashboard-server.js';
import { HISTORY_SECONDS } from '../core/host/contract.js';
import { createLogger } from '../core/util/log.js';
import { launchChromium } from '../test/e2e/support/browser.js';
import { RENDERER_OUT } from '../test/e2e/support/renderer-build.js';

/**
 * `npm run ui:bench`: what the dashboard costs in the browser with 4 uplinks and
 * their full five-minute history. The real demo engine runs for --warmup seconds
 * (default: the whole history window) so that the snapshot the page loads carries full
 * rings; then, over --seconds, it counts chart redraws (changes of each chart path's
 * `d`, by a MutationObserver) and the renderer's main-thread time (CDP Performance
 * metrics) and its process CPU time (CDP SystemInfo.getProcessInfo).
 */
const { values } = parseArgs({
  options: {
    warmup: { type: 'string', default: String(HISTORY_SECONDS + 5) },
    seconds: { type: 'string', default: '20' },
    uplinks: { type: 'string', default: '4' },
  },
});
const warmup = Number(values.warmup);
const seconds = Number(values.seconds);

const logger = createLogger({ level: 'error' });
const host = await BraidHost.start({ mode: 'demo', demoUplinks: Number(values.uplinks), logger });
const server = await startDashboardServer({ engine: host, staticDir: RENDERER_OUT, logger });
process.stdout.write(`engine up; filling ${warmup} s of history before opening the page…\n`);
await new Promise((r) => setTimeout(r, warmup * 1000));

const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const cdp = await page.context().newCDPSession(page);
  const browserCdp = await browser.newBrowserCDPSession();
  await cdp.send('Performance.enable');
  page.on('pageerror', (err) => process.stderr.write(`page error: ${err.message}\n`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning')
      process.stderr.write(`page ${m.type()}: ${m.text()}\n`);
  });
  await page.goto(server.url);
  await page
    .locator('article[data-uplink]')
    .nth(Number(values.uplinks) - 1)
    .waitFor();
  await page.waitForTimeout(2000);

  // In-page code as text: this file is type-checked without DOM types.
  const points = await page.evaluate<number[]>(`
    [...document.querySelectorAll('article[data-uplink] path.spark-line')]
      .map((p) => (p.getAttribute('d') ?? '').split(/[ML]/).length - 1)`);
  // Per chart: renders with new data (the chart stamps its ring's version on its plot,
  // data-v) and changes of the drawn lines (their `d`; a flat line that only shifts by
  // less than a column is not redrawn by the browser at all).
  const labels = await page.evaluate<string[]>(`(() => {
    const figures = [...document.querySelectorAll('figure.chart')];
    window.__renders = figures.map(() => 0);
    window.__paths = figures.map(() => 0);
    figures.forEach((f, i) => {
      const plot = f.querySelector('[data-v]');
      new MutationObserver(() => window.__renders[i]++).observe(plot, { attributes: true, attributeFilter: ['data-v'] });
      new MutationObserver((records) => {
        if (records.some((r) => r.type === 'childList' || r.attributeName === 'd')) window.__paths[i]++;
      }).observe(plot, { attributes: true, attributeFilter: ['d'], childList: true, subtree: true });
    });
    return figures.map((f) => (f.closest('[data-uplink]')?.getAttribute('data-uplink') ?? 'all') + ' ' +
      (f.getAttribute('data-series') ?? ''));
  })()`);
  const metrics = async (): Promise<Record<string, number>> =>
    Object.fromEntries(
      (await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]),
    );
  const rendererCpu = async (): Promise<number> => {
    const info = (await browserCdp.send('SystemInfo.getProcessInfo')) as {
      processInfo: Array<{ type: string; cpuTime: number }>;
    };
    return info.processInfo.filter((p) => p.type === 'renderer').reduce((s, p) => s + p.cpuTime, 0);
  };
  const m0 = await metrics();
  const c0 = await rendererCpu();
  const t0 = performance.now();
  await page.waitForTimeout(seconds * 1000);
  const dt = (performance.now() - t0) / 1000;
  const m1 = await metrics();
  const c1 = await rendererCpu();
  const redraws = await page.evaluate<number[]>('window.__renders');
  const pathChanges = await page.evaluate<number[]>('window.__paths');

  const perSec = (k: string): number => (m1[k]! - m0[k]!) / dt;
  const rates = redraws.map((n) => n / dt);
  const slowest = rates
    .map((r, i) => ({ chart: labels[i]!, hz: r }))
    .sort((a, b) => a.hz - b.hz)
    .slice(0, 3);
  const result = {
    uplinks: Number(values.uplinks),
    charts: redraws.length,
    pointsPerUplinkChart: { min: Math.min(...points), max: Math.max(...points) },
    lineChangesHz: {
      min: Math.min(...pathChanges.map((n) => n / dt)),
      max: Math.max(...pathChanges.map((n) => n / dt)),
    },
    chartRenderHz: {
      min: Math.min(...rates),
      median: [...rates].sort((a, b) => a - b)[rates.length >> 1],
      slowest,
    },
    mainThreadSecondsPerSecond: {
      task: perSec('TaskDuration'),
      script: perSec('ScriptDuration'),
      layout: perSec('LayoutDuration'),
      style: perSec('RecalcStyleDuration'),
    },
    rendererProcessCpuSecondsPerSecond: (c1 - c0) / dt,
    jsHeapMB: m1.JSHeapUsedSize! / 1e6,
    domNodes: m1.Nodes,
    measuredSeconds: dt,
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} finally {
  await browser.close();
  await server.close();
  await host.stop();
}
