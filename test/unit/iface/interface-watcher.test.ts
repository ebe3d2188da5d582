import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import type { NetworkInterfaceInfo } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { InterfaceWatcher } from '../../../core/iface/interface-watcher.js';
import { parseIpAddr } from '../../../core/iface/ip-json.js';
import type { Uplink } from '../../../core/iface/uplink.js';
import { isBraidError } from '../../../core/util/errors.js';
import { createMemoryLogger } from '../../../core/util/log.js';

function info(address: string, cidr: string, internal = false): NetworkInterfaceInfo {
  const v6 = address.includes(':');
  return {
    address,
    netmask: v6 ? 'ffff:ffff:ffff:ffff::' : '255.255.255.0',
    family: v6 ? 'IPv6' : 'IPv4',
    mac: '02:00:00:00:00:01',
    internal,
    cidr,
    ...(v6 ? { scopeid: 0 } : {}),
  } as NetworkInterfaceInfo;
}

type Table = NodeJS.Dict<NetworkInterfaceInfo[]>;

const watchers: InterfaceWatcher[] = [];
afterEach(async () => {
  await Promise.all(watchers.splice(0).map((w) => w.stop()));
});

function polling(table: { current: Table }, extra: { ignore?: string[] } = {}) {
  const { logger, lines } = createMemoryLogger('debug');
  const w = new InterfaceWatcher({
    source: 'poll',
    pollIntervalMs: 20,
    debounceMs: 0,
    logger,
    networkInterfaces: () => table.current,
    ...extra,
  });
  watchers.push(w);
  return { w, lines };
}

function record(w: InterfaceWatcher): Array<[string, Uplink]> {
  const events: Array<[string, Uplink]> = [];
  w.on('added', (u) => events.push(['added', u]));
  w.on('removed', (u) => events.push(['removed', u]));
  w.on('changed', (u) => events.push(['changed', u]));
  return events;
}

describe('InterfaceWatcher, polling source', () => {
  it('emits added for every interface present before start() resolves, ignoring loopback', async () => {
    const table = {
      current: {
        lo: [info('127.0.0.1', '127.0.0.1/8', true)],
        braidtest0: [info('10.1.0.2', '10.1.0.2/24')],
      } as Table,
    };
    const { w } = polling(table, { ignore: ['braidtest*'] });
    const events = record(w);
    await w.start();
    expect(w.source).toBe('poll');
    expect(events.map(([t, u]) => [t, u.name, u.ignored]).sort()).toEqual([
      ['added', 'braidtest0', true],
      ['added', 'lo', true],
    ]);
    expect(w.snapshot().find((u) => u.name === 'lo')).toMatchObject({
      kind: 'loopback',
      up: true,
      addresses: [{ address: '127.0.0.1', family: 4, prefixLength: 8 }],
    });
    expect(
      w.snapshot().every((u) => u.gateway === undefined && u.gatewayReachable === undefined),
    ).toBe(true);
  });

  it('reports an address change, a vanished and a new interface at the next poll', async () => {
    const table = {
      current: {
        bt0: [info('10.1.0.2', '10.1.0.2/24')],
        bt1: [info('10.2.0.2', '10.2.0.2/24')],
      } as Table,
    };
    const { w } = polling(table);
    await w.start();
    const events = record(w);
    const changed = once(w, 'changed');
    table.current = {
      bt0: [info('10.1.0.3', '10.1.0.3/24'), info('fd00::3', 'fd00::3/64')],
      bt2: [info('10.3.0.2', '10.3.0.2/24')],
    };
    const [u, previous] = (await changed) as [Uplink, Uplink];
    expect(previous.addresses.map((a) => a.address)).toEqual(['10.1.0.2']);
    expect(u.addresses.map((a) => a.address)).toEqual(['10.1.0.3', 'fd00::3']);
    expect(events.map(([t, x]) => [t, x.name])).toEqual([
      ['removed', 'bt1'],
      ['changed', 'bt0'],
      ['added', 'bt2'],
    ]);
    expect(
      w
        .snapshot()
        .map((x) => x.name)
        .sort(),
    ).toEqual(['bt0', 'bt2']);
  });

  it('emits nothing after stop()', async () => {
    const table = { current: { bt0: [info('10.1.0.2', '10.1.0.2/24')] } as Table };
    const { w } = polling(table);
    await w.start();
    await w.stop();
    const events = record(w);
    table.current = {};
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toEqual([]);
  });

  it('keeps emitting the other events of a change when a listener throws, and logs it', async () => {
    const table = { current: {} as Table };
    const { w, lines } = polling(table);
    await w.start();
    const seen: string[] = [];
    w.on('added', (u) => {
      seen.push(u.name);
      if (u.name === 'bt0') throw new Error('listener bug');
    });
    const second = new Promise<void>((resolve) =>
      w.on('added', (u) => u.name === 'bt1' && resolve()),
    );
    table.current = {
      bt0: [info('10.1.0.2', '10.1.0.2/24')],
      bt1: [info('10.2.0.2', '10.2.0.2/24')],
    };
    await second;
    expect(seen).toEqual(['bt0', 'bt1']);
    expect(
      lines.some((l) => l.msg === 'interface watcher listener threw' && l.name === 'bt0'),
    ).toBe(true);
  });
});

describe('InterfaceWatcher, options and life cycle', () => {
  it('rejects intervals that are not positive', () => {
    for (const bad of [{ pollIntervalMs: 0 }, { debounceMs: -1 }, { reconcileIntervalMs: NaN }]) {
      let code: string | undefined;
      try {
        new InterfaceWatcher(bad);
      } catch (err) {
        code = isBraidError(err) ? err.code : 'other';
      }
      expect(code).toBe('BRAID_ERR_CONFIG');
    }
  });

  it('reports every interface as added again when started after a stop', async () => {
    const { w } = polling({ current: { bt0: [info('10.1.0.2', '10.1.0.2/24')] } });
    await w.start();
    await w.stop();
    const events = record(w);
    await w.start();
    expect(events.map(([t, u]) => [t, u.name])).toEqual([['added', 'bt0']]);
  });

  it('refuses a second start()', async () => {
    const { w } = polling({ current: {} });
    await w.start();
    await expect(w.start()).rejects.toMatchObject({ code: 'BRAID_ERR_USAGE' });
  });
});

function hasIpJson(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    execFileSync('ip', ['-json', 'link', 'show', 'lo'], { stdio: 'pipe' });
    return true;
  } catch (err) {
    console.warn(`netlink watcher test skipped: ip -json unusable (${String(err)})`);
    return false;
  }
}

describe.skipIf(!hasIpJson())('InterfaceWatcher, netlink source on this host', () => {
  it('starts from ip monitor and reports the same interfaces and addresses as ip -json addr', async () => {
    const { logger } = createMemoryLogger('warn');
    const w = new InterfaceWatcher({ logger, gatewayProbeIntervalMs: 0 });
    watchers.push(w);
    await w.start();
    expect(w.source).toBe('netlink');
    const truth = parseIpAddr(
      execFileSync('ip', ['-details', '-json', 'addr', 'show'], { encoding: 'utf8' }),
    );
    const snap = w.snapshot();
    expect(snap.map((u) => [u.index, u.name])).toEqual(truth.map((l) => [l.index, l.name]));
    for (const l of truth) {
      const u = snap.find((x) => x.index === l.index)!;
      expect(u.addresses.map((a) => a.address).sort()).toEqual(
        l.addresses.map((a) => a.address).sort(),
      );
    }
    expect(snap.find((u) => u.name === 'lo')).toMatchObject({
      kind: 'loopback',
      ignored: true,
      up: true,
    });
  });
});
