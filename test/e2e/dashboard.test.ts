import { statSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BraidHost } from '../../core/host/host.js';
import { startDashboardServer, type DashboardServer } from '../../core/host/dashboard-server.js';
import { createLogger } from '../../core/util/log.js';
import { AppsPage } from './pages/apps-page.js';
import { DashboardPage, type ViewName } from './pages/dashboard-page.js';
import { OverviewPage } from './pages/overview-page.js';
import { launchChromium } from './support/browser.js';
import { ensureRendererBuilt, RENDERER_OUT } from './support/renderer-build.js';

/**
 * The dashboard end to end: the real engine in demo mode (embedded relay, three
 * loopback uplinks behind emulated links, apps with traffic), the headless server, the
 * built renderer in Debian's Chromium. What the UI changes is read back from the
 * engine, never from the DOM.
 */
describe('dashboard (headless server, demo engine, Chromium)', () => {
  let host: BraidHost;
  let server: DashboardServer;
  let browser: Browser;
  let page: Page;
  let dashboard: DashboardPage;

  beforeAll(async () => {
    await ensureRendererBuilt();
    host = await BraidHost.start({ mode: 'demo', logger: createLogger({ level: 'error' }) });
    server = await startDashboardServer({
      engine: host,
      staticDir: RENDERER_OUT,
      logger: createLogger({ level: 'error' }),
    });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (err) => {
      throw err;
    });
    dashboard = new DashboardPage(page);
    await dashboard.open(server.url);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await host?.stop();
  });

  it('shows every demo uplink, and its values and charts move over time', async () => {
    const overview = new OverviewPage(page);
    expect(await overview.uplinkIds()).toEqual(['wlan0', 'usb0', 'eth0']);
    const read = async (): Promise<Record<string, string>> => {
      const out: Record<string, string> = {};
      for (const id of ['wlan0', 'usb0', 'eth0']) {
        out[`${id} throughput`] = await overview.value(id, 'throughput');
        out[`${id} latency`] = await overview.value(id, 'latency');
        out[`${id} chart`] = await overview.chartPath(id, 'latency');
      }
      out.aggregate = (await page.locator('[data-metric="aggregate"]').textContent()) ?? '';
      return out;
    };
    const before = await read();
    await page.waitForTimeout(2500);
    const after = await read();
    // Every uplink's latency chart grew or moved, and the aggregate rate changed.
    for (const id of ['wlan0', 'usb0', 'eth0']) {
      expect(after[`${id} chart`], `${id} latency chart`).not.toEqual(before[`${id} chart`]);
      expect(after[`${id} latency`]).toMatch(/\d+(\.\d)? ms/);
    }
    expect(after.aggregate).not.toEqual(before.aggregate);
    const changedValues = Object.keys(before).filter(
      (k) => !k.endsWith('chart') && before[k] !== after[k],
    );
    expect(changedValues.length).toBeGreaterThanOrEqual(3);
  });

  it('dragging a slider with the mouse changes the engine’s rule; the keyboard does too', async () => {
    await dashboard.show('Apps');
    const apps = new AppsPage(page);
    const appId = '/usr/bin/syncthing';
    // core/proxy's default for a sync app: 0.2, near "throughput".
    expect(host.rule(appId)!.lossVsThroughput).toBeCloseTo(0.2, 5);
    await apps.drag(appId, 'lossVsThroughput', 0.85);
    await expect
      .poll(() => host.rule(appId)!.lossVsThroughput, { timeout: 5000 })
      .toBeGreaterThan(0.7);
    const settled = host.rule(appId)!.lossVsThroughput;
    expect(settled).toBeLessThan(0.95);

    const latency = apps.slider(appId, 'latencyVsThroughput');
    const start = host.rule(appId)!.latencyVsThroughput;
    await latency.focus();
    for (let i = 0; i < 10; i++) await page.keyboard.press('ArrowRight');
    await expect
      .poll(() => host.rule(appId)!.latencyVsThroughput, { timeout: 5000 })
      .toBeCloseTo(start + 0.1, 5);
  });

  it('toggling an app’s bypass moves its flow off the association, and back', async () => {
    await dashboard.show('Apps');
    const apps = new AppsPage(page);
    const appId = '/opt/zoom/zoom';
    const route = host.routeOf(appId);
    expect(route.kind).toBe('association');
    const sessionId = route.kind === 'association' ? route.sessionId : -1;
    expect(host.sessionIds()).toContain(sessionId);

    await apps.bypassSwitch(appId).click();
    await expect.poll(() => host.routeOf(appId).kind, { timeout: 5000 }).toBe('bypass');
    expect(host.rule(appId)!.bypass).toBe(true);
    // The session is gone from the association once its close is acknowledged.
    await expect.poll(() => host.sessionIds().includes(sessionId), { timeout: 10_000 }).toBe(false);
    await expect.poll(() => apps.doing(appId), { timeout: 5000 }).toMatch(/bypassing Braid/);

    await apps.bypassSwitch(appId).click();
    await expect.poll(() => host.routeOf(appId).kind, { timeout: 5000 }).toBe('association');
    const back = host.routeOf(appId);
    expect(back.kind === 'association' && back.sessionId !== sessionId).toBe(true);
  });

  it('sets an uplink’s role and the global bypass from their views, in the engine', async () => {
    await dashboard.show('Uplinks');
    const role = page.getByRole('combobox', { name: 'Role of Phone (USB tethering)' });
    await role.selectOption('never');
    const usb = (): string | undefined =>
      host.snapshot().uplinks.find((u) => u.id === 'usb0')?.state;
    await expect.poll(usb, { timeout: 5000 }).toBe('disabled');
    expect(
      host.snapshot().paths.filter((p) => p.uplinkId === 'usb0' && p.state === 'active'),
    ).toEqual([]);
    await role.selectOption('primary');
    await expect.poll(usb, { timeout: 10_000 }).not.toBe('disabled');

    await dashboard.show('Settings');
    const bypass = page.getByRole('switch', { name: 'Bypass Braid for every app' });
    await bypass.click();
    await expect.poll(() => host.globalBypass, { timeout: 5000 }).toBe(true);
    await expect.poll(() => host.routeOf('/usr/lib/firefox/firefox').kind).toBe('bypass');
    // The switch shows the engine's state once the next update arrived.
    await expect.poll(() => bypass.isChecked()).toBe(true);
    await bypass.click();
    await expect.poll(() => host.globalBypass, { timeout: 5000 }).toBe(false);
  });

  it('shows how each uplink’s path is congestion-controlled, as the engine runs it', async () => {
    await dashboard.show('Uplinks');
    const label = { newreno: 'NewReno', cubic: 'CUBIC', bbr: 'BBR' } as const;
    for (const id of ['wlan0', 'usb0', 'eth0']) {
      const cell = page.locator(`tr[data-uplink="${id}"] td[data-column="congestion"]`);
      // The engine's controller and coupling for the uplink's live path, read when the
      // cell is read ('auto' may move a path to BBR in between: poll until they agree).
      const expected = (): string | undefined => {
        const path = host
          .snapshot()
          .paths.filter((p) => p.uplinkId === id && p.state === 'active')
          .at(-1);
        if (path === undefined) return undefined;
        if (path.transport === 'tcp') return 'kernel TCP';
        return label[path.controller] + (path.coupled ? ' · coupled' : '');
      };
      await expect
        .poll(
          async () => {
            const want = expected();
            const text = (await cell.textContent()) ?? '';
            return want !== undefined && (text === want || text.startsWith(`${want} · shares`));
          },
          { timeout: 10_000 },
        )
        .toBe(true);
    }
  });

  it('refuses the page without the token, in the browser too', async () => {
    const other = await browser.newPage();
    try {
      const res = await other.goto(`http://127.0.0.1:${server.port}/`);
      expect(res?.status()).toBe(403);
      const wrong = await other.goto(`http://127.0.0.1:${server.port}/${'x'.repeat(43)}/`);
      expect(wrong?.status()).toBe(403);
      expect(await other.locator('[data-uplink]').count()).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('moves between views with the arrow keys (WAI-ARIA tabs)', async () => {
    await dashboard.show('Overview');
    await page.getByRole('tab', { name: 'Overview' }).focus();
    await page.keyboard.press('ArrowRight');
    await expect
      .poll(() => page.getByRole('tab', { name: 'Apps' }).getAttribute('aria-selected'))
      .toBe('true');
    expect(await page.evaluate('document.activeElement.id')).toBe('tab-apps');
    await page.keyboard.press('End');
    await page.locator('main[data-view="settings"]').waitFor();
    // The sliders and switches of the Apps view are named by their labels.
    await dashboard.show('Apps');
    const apps = await page.locator('article[data-app]').count();
    expect(apps).toBe(3);
    expect(await page.getByRole('slider', { name: 'Throughput ↔ low loss' }).count()).toBe(apps);
    expect(await page.getByRole('slider', { name: 'Throughput ↔ low latency' }).count()).toBe(apps);
    expect(await page.getByRole('switch', { name: /^Bypass Braid for / }).count()).toBe(apps);
  });

  it('follows the OS colour scheme', async () => {
    const background = (): Promise<string> =>
      page.evaluate('getComputedStyle(document.body).backgroundColor');
    await page.emulateMedia({ colorScheme: 'light' });
    const light = await background();
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await background();
    expect(light).toBe('rgb(246, 247, 249)');
    expect(dark).toBe('rgb(18, 20, 23)');
    await dashboard.show('Overview');
    await dashboard.screenshot('overview-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('saves a screenshot of each view', async () => {
    const views: ViewName[] = ['Overview', 'Apps', 'Sessions', 'Uplinks', 'Settings'];
    for (const view of views) {
      await dashboard.show(view);
      // Let one update land so the view shows live values.
      await page.waitForTimeout(300);
      const path = await dashboard.screenshot(view.toLowerCase());
      expect(statSync(path).size).toBeGreaterThan(5000);
    }
    // The Sessions view lists the live sessions with their split, and what each sent
    // again on the fastest path (at most what it sent).
    await dashboard.show('Sessions');
    await vi.waitFor(async () => {
      expect(await page.locator('tr[data-session]').count()).toBeGreaterThanOrEqual(2);
    });
    expect(await page.locator('th', { hasText: 'Sent again' }).count()).toBe(1);
    const rowLocators = await page.locator('tr[data-session]').all();
    const rows: Array<{ bytes: number; again: number; text: string }> = [];
    for (const tr of rowLocators) {
      rows.push({
        bytes: Number(await tr.locator('[data-bytes]').getAttribute('data-bytes')),
        again: Number(await tr.locator('[data-reinjected]').getAttribute('data-reinjected')),
        text: (await tr.locator('[data-reinjected]').textContent()) ?? '',
      });
    }
    for (const row of rows) {
      expect(Number.isInteger(row.again) && row.again >= 0 && row.again <= row.bytes).toBe(true);
      expect(row.text).toMatch(/^\d+(\.\d+)? (B|kB|MB|GB)/);
      if (row.again < 1000) expect(row.text.startsWith(`${row.again} B`)).toBe(true);
    }
  });
});
