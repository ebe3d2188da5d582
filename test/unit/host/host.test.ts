import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BraidHost } from '../../../core/host/host.js';
import type { Update } from '../../../core/host/contract.js';
import { createLogger } from '../../../core/util/log.js';

const logger = createLogger({ level: 'error' });

function nextUpdate(host: BraidHost): Promise<Update> {
  return new Promise((resolve) => host.once('update', resolve));
}

describe('BraidHost in demo mode (embedded relay, loopback uplinks)', () => {
  let dir: string;
  let host: BraidHost | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'braid-host-'));
  });
  afterEach(async () => {
    await host?.stop();
    host = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows a broken settings file as a warning in the snapshot instead of crashing', async () => {
    const file = join(dir, 'settings.json');
    writeFileSync(file, 'not json');
    host = await BraidHost.start({ mode: 'demo', demoUplinks: 1, settingsFile: file, logger });
    const snap = host.snapshot();
    expect(snap.warnings).toHaveLength(1);
    expect(snap.warnings[0]).toMatch(/not valid JSON.*; moved to .*broken-/);
    expect(snap.events.some((e) => e.level === 'warn' && e.message === snap.warnings[0])).toBe(
      true,
    );
    expect(readdirSync(dir).some((n) => n.startsWith('settings.json.broken-'))).toBe(true);
    // The next change writes a good file again.
    await host.handlers.setBypass({ on: true });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ globalBypass: true });
  });

  it('keeps app rules in core/proxy’s rules file beside the settings; a broken one is a warning', async () => {
    writeFileSync(join(dir, 'rules.json'), '{ broken');
    host = await BraidHost.start({
      mode: 'demo',
      demoUplinks: 1,
      settingsFile: join(dir, 'settings.json'),
      logger,
    });
    expect(host.snapshot().warnings.some((w) => w.includes('rules.json was broken'))).toBe(true);
    await host.handlers.setAppRule({ appId: '/opt/zoom/zoom', lossVsThroughput: 0.35 });
    const doc = JSON.parse(readFileSync(join(dir, 'rules.json'), 'utf8')) as { rules: unknown[] };
    expect(doc.rules).toEqual([
      expect.objectContaining({ appId: '/opt/zoom/zoom', kind: 'call', lossVsThroughput: 0.35 }),
    ]);
    // A UDP app switched to reliable-ordered is carried as a byte stream on the association.
    const h = host.handlers;
    await expect(
      (async () => h.setAppRule({ appId: '/opt/zoom/zoom', udpSemantics: 'reliable-ordered' }))(),
    ).resolves.toMatchObject({ udpSemantics: 'reliable-ordered' });
    expect(host.routeOf('/opt/zoom/zoom').kind).toBe('association');
  });

  it('streams updates a few times a second with every uplink, path, session and app', async () => {
    host = await BraidHost.start({ mode: 'demo', logger, tickMs: 100 });
    const first = await nextUpdate(host);
    const t0 = Date.now();
    let u = first;
    for (let i = 0; i < 10; i++) u = await nextUpdate(host);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(u.seq).toBe(first.seq + 10);
    expect(u.uplinks.map((x) => [x.id, x.transport])).toEqual([
      ['wlan0', 'udp'],
      ['usb0', 'udp'],
      ['eth0', 'tcp'],
    ]);
    expect(u.paths).toHaveLength(3);
    expect(u.apps.map((a) => a.route.kind)).toEqual(['association', 'association', 'association']);
    expect(u.sessions.map((s) => s.appName).sort()).toEqual(['Firefox', 'Syncthing', 'Zoom']);
    for (const s of u.sessions) {
      // Reinjected bytes are a part of what the session sent.
      expect(Number.isSafeInteger(s.reinjectedBytes), s.appName).toBe(true);
      expect(s.reinjectedBytes, s.appName).toBeGreaterThanOrEqual(0);
      expect(s.reinjectedBytes, s.appName).toBeLessThanOrEqual(s.bytes);
    }
    expect(u.association).toBe('active');
  });

  it('closes an uplink’s path when its role becomes never, and joins a new one when it is back', async () => {
    const file = join(dir, 'settings.json');
    host = await BraidHost.start({ mode: 'demo', settingsFile: file, logger });
    await host.handlers.setUplink({ uplinkId: 'usb0', role: 'never' });
    let u = await nextUpdate(host);
    const usb = u.uplinks.find((x) => x.id === 'usb0')!;
    expect(usb.state).toBe('disabled');
    expect(u.paths.filter((p) => p.uplinkId === 'usb0').map((p) => p.state)).toEqual(['closed']);
    expect((JSON.parse(readFileSync(file, 'utf8')) as { uplinks: unknown }).uplinks).toEqual({
      usb0: { role: 'never', capBytes: null },
    });

    await host.handlers.setUplink({ uplinkId: 'usb0', role: 'primary' });
    for (let i = 0; i < 50; i++) {
      u = await nextUpdate(host);
      if (u.paths.some((p) => p.uplinkId === 'usb0' && p.state === 'active')) break;
    }
    expect(u.paths.filter((p) => p.uplinkId === 'usb0').map((p) => p.state)).toEqual([
      'closed',
      'active',
    ]);
    expect(u.uplinks.find((x) => x.id === 'usb0')!.state).not.toBe('disabled');
  });

  it('keeps a backup uplink’s path open and standing by while a primary works', async () => {
    host = await BraidHost.start({ mode: 'demo', logger });
    await host.handlers.setUplink({ uplinkId: 'usb0', role: 'backup' });
    const u = await nextUpdate(host);
    expect(u.uplinks.find((x) => x.id === 'usb0')).toMatchObject({
      role: 'backup',
      state: 'standby',
    });
    expect(u.paths.filter((p) => p.uplinkId === 'usb0').map((p) => p.state)).toEqual(['active']);
  });

  it('enforces a data cap: warns, then demotes the uplink to backup and says so', async () => {
    host = await BraidHost.start({
      mode: 'demo',
      settingsFile: join(dir, 'settings.json'),
      logger,
    });
    await host.handlers.setUplink({ uplinkId: 'eth0', capBytes: 200_000 });
    const seen: string[] = [];
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !seen.some((m) => m.includes('reached its data cap'))) {
      const u = await nextUpdate(host);
      for (const e of u.events) seen.push(e.message);
    }
    expect(seen.some((m) => m.includes('eth0 used 80% of its data cap'))).toBe(true);
    expect(seen.some((m) => m.includes('eth0 reached its data cap'))).toBe(true);
    // The account is kept beside the settings.
    expect(existsSync(join(dir, 'data-caps.json'))).toBe(true);
  });

  it('moves every app off the association with the global bypass, and back', async () => {
    host = await BraidHost.start({ mode: 'demo', logger });
    await host.handlers.setBypass({ on: true });
    const ids = ['/usr/lib/firefox/firefox', '/opt/zoom/zoom', '/usr/bin/syncthing'];
    expect(ids.map((id) => host!.routeOf(id).kind)).toEqual(['bypass', 'bypass', 'bypass']);
    await host.handlers.setBypass({ on: false });
    expect(ids.map((id) => host!.routeOf(id).kind)).toEqual([
      'association',
      'association',
      'association',
    ]);
  });

  it('refuses an invite that does not parse, naming the field', async () => {
    host = await BraidHost.start({ mode: 'demo', demoUplinks: 1, logger });
    const h = host.handlers;
    await expect(
      (async () => h.setRelaySettings({ relayInvite: 'braid://127.0.0.1:7400#nothex?key=x.y' }))(),
    ).rejects.toMatchObject({ code: 'BRAID_ERR_BAD_INVITE' });
    expect(host.snapshot().settings.relayInvite).toBeNull();
    expect(existsSync(join(dir, 'settings.json'))).toBe(false);
  });
});
