import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { mptcpizeAvailable, runBaselines } from './baselines.js';
import { FIDELITY_MIN_RATIO, formatFidelity, measureFidelity } from './fidelity.js';
import { repoRoot } from './link.js';
import { ipSync, isAlive, labUnavailableReason, listNamespaces } from './netns.js';
import { loadScenario } from './scenario.js';
import { Topology } from './topology.js';

/**
 * The lab with real traffic: namespaces, TUN devices, forwarder processes and
 * kernel TCP/MPTCP. Needs root; skips with the reason otherwise.
 */

const reason = labUnavailableReason();
if (reason !== null) console.warn(`lab tests skipped: ${reason}`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

describe.skipIf(reason !== null)('lab (root, netns, TUN)', () => {
  const topologies: Topology[] = [];
  afterAll(async () => {
    await Promise.all(topologies.map((t) => t.destroy()));
  });

  it('carries one kernel TCP flow at >= 90% of 20 Mbit/s over 40 ms RTT, and ping sees 40 ms', async () => {
    const f = await measureFidelity({ durationMs: 8000, congestionControl: 'cubic' });
    console.log(formatFidelity(f));
    expect(f.ratio).toBeGreaterThanOrEqual(FIDELITY_MIN_RATIO);
    // Goodput cannot exceed the rate less TCP/IP headers (1448 of 1500 bytes).
    expect(f.goodputBps).toBeLessThanOrEqual(20e6 * (1448 / 1500) * 1.01);
    expect(Math.abs(f.ping.avgMs - 40)).toBeLessThan(2);
    expect(f.ping.minMs).toBeGreaterThan(39);
  });

  it('gives each uplink its own address, routing table and source rule, and black-holes a link on demand', async () => {
    const topo = await Topology.create({
      uplinks: [
        { name: 'wifi', c2s: { delayMs: 5 }, s2c: { delayMs: 5 } },
        { name: 'lte', c2s: { delayMs: 25 }, s2c: { delayMs: 25 } },
      ],
      serverAddresses: 2,
    });
    topologies.push(topo);
    // A multihomed server: every server address answers over every uplink (n x m pairs).
    for (const server of topo.serverAddresses) {
      for (const u of topo.uplinks) {
        await topo.exec('client', 'ping', [
          '-n',
          '-q',
          '-c',
          '1',
          '-W',
          '1',
          '-I',
          u.address,
          server,
        ]);
      }
    }
    for (const u of topo.uplinks) {
      const route = await topo.exec('client', 'ip', [
        'route',
        'get',
        topo.serverAddress,
        'from',
        u.address,
      ]);
      expect(route).toContain(`dev ${u.clientDevice}`);
      expect(route).toContain(`table ${u.table}`);
    }
    const main = await topo.exec('client', 'ip', ['route', 'get', topo.serverAddress]);
    expect(main).toContain('dev up0');

    const ping = async (from: string): Promise<number | null> => {
      const out = await topo
        .exec('client', 'ping', [
          '-n',
          '-q',
          '-c',
          '3',
          '-i',
          '0.1',
          '-W',
          '1',
          '-I',
          from,
          topo.serverAddress,
        ])
        .catch(() => '');
      const m = /= [\d.]+\/([\d.]+)\//.exec(out);
      return m === null ? null : Number(m[1]);
    };
    const wifiRtt = await ping('10.10.0.2');
    const lteRtt = await ping('10.10.1.2');
    expect(wifiRtt).toBeGreaterThanOrEqual(9.5);
    expect(wifiRtt).toBeLessThan(12);
    expect(lteRtt).toBeGreaterThanOrEqual(49.5);
    expect(lteRtt).toBeLessThan(52);

    await topo.uplink('lte').link.down();
    expect(await ping('10.10.1.2')).toBeNull();
    expect(await ping('10.10.0.2')).not.toBeNull();
    // No interface event: the client still sees its uplink up.
    expect(await topo.exec('client', 'ip', ['link', 'show', 'up1'])).toContain('UP');
    await topo.uplink('lte').link.up();
    expect(await ping('10.10.1.2')).not.toBeNull();
    const stats = await topo.uplink('lte').link.stats();
    expect(stats.c2s.downDropPackets).toBeGreaterThanOrEqual(3);

    await topo.destroy();
    expect(listNamespaces()).not.toContain(topo.clientNs);
    expect(listNamespaces()).not.toContain(topo.serverNs);
  });

  it('routes with one main-table default route on request, with or without per-uplink source rules', async () => {
    const uplinks = [
      { name: 'a', c2s: {}, s2c: {} },
      { name: 'b', c2s: {}, s2c: {} },
    ];
    const pinned = await Topology.create({ uplinks, singleDefaultRoute: true });
    topologies.push(pinned);
    const defaults = await pinned.exec('client', 'ip', ['route', 'show', 'default']);
    expect(defaults.trim().split('\n')).toEqual([expect.stringContaining('dev up0')]);
    const get = (topo: Topology, ...extra: string[]): Promise<string> =>
      topo.exec('client', 'ip', ['route', 'get', topo.serverAddress, ...extra]);
    expect(await get(pinned)).toContain('dev up0');
    // Source rules kept: a socket bound to uplink b's address still leaves through b.
    expect(await get(pinned, 'from', '10.10.1.2')).toContain('dev up1');

    const bare = await Topology.create({ uplinks, singleDefaultRoute: true, sourceRouting: false });
    topologies.push(bare);
    expect(await bare.exec('client', 'ip', ['rule', 'show'])).not.toContain('lookup 101');
    // Without them, only egress pinning (a device, not an address) can use uplink b.
    expect(await get(bare, 'from', '10.10.1.2')).toContain('dev up0');
    await pinned.destroy();
    await bare.destroy();
  });

  it('sends every uplink through one shared bottleneck link when asked', async () => {
    const topo = await Topology.create({
      uplinks: [
        { name: 'a', c2s: { delayMs: 5 }, s2c: { delayMs: 5 } },
        { name: 'b', c2s: { delayMs: 5 }, s2c: { delayMs: 5 } },
      ],
      bottleneck: { c2s: { delayMs: 10 }, s2c: { delayMs: 10 } },
    });
    topologies.push(topo);
    expect(listNamespaces()).toContain(topo.routerNs);
    for (const u of topo.uplinks) {
      const out = await topo.exec('client', 'ping', [
        '-n',
        '-q',
        '-c',
        '10',
        '-i',
        '0.05',
        '-I',
        u.address,
        topo.serverAddress,
      ]);
      // 2 x 5 ms on the uplink + 2 x 10 ms on the bottleneck; the minimum, with room
      // for forwarder lateness on a busy machine (two forwarders each way).
      const min = Number(/= ([\d.]+)\//.exec(out)![1]);
      expect(min).toBeGreaterThanOrEqual(29.5);
      expect(min).toBeLessThan(40);
    }
    const shared = await topo.bottleneck!.stats();
    expect(shared.c2s.deliveredPackets).toBeGreaterThanOrEqual(6);
    expect(shared.s2c.deliveredPackets).toBeGreaterThanOrEqual(6);
    await topo.destroy();
    expect(listNamespaces()).not.toContain(topo.routerNs);
  });

  it('leaves no namespace, process or device behind when its owner is killed with SIGKILL', async () => {
    const script = fileURLToPath(new URL('./tools/hold-topology.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve) =>
      createInterface({ input: child.stdout }).once('line', resolve),
    );
    const made = JSON.parse(line) as {
      clientNs: string;
      serverNs: string;
      forwarders: number[];
      sleepers: number[];
    };
    expect(listNamespaces()).toContain(made.clientNs);
    child.kill('SIGKILL');
    const gone = await waitFor(() => {
      const names = listNamespaces();
      return !names.includes(made.clientNs) && !names.includes(made.serverNs);
    }, 5000);
    expect(gone).toBe(true);
    // The sleepers were direct children of `ip netns exec`; the reaper killed them.
    expect(
      await waitFor(
        () => [...made.forwarders, ...made.sleepers].every((pid) => !isAlive(pid)),
        3000,
      ),
    ).toBe(true);
    const devices = ipSync(['-o', 'link', 'show']).stdout;
    expect(devices).not.toContain(`bl-${child.pid!.toString(36)}-`);
  });

  it('sweeps namespaces and TUN devices whose owning process no longer exists', async () => {
    let dead = 4_194_000;
    while (isAlive(dead)) dead--;
    const ns = `braidlab-${dead}-0-client`;
    const device = `bl-${dead.toString(36)}-0c0`;
    expect(ipSync(['netns', 'add', ns]).ok).toBe(true);
    expect(ipSync(['tuntap', 'add', 'dev', device, 'mode', 'tun']).ok).toBe(true);
    const topo = await Topology.create({ uplinks: [{ name: 'a', c2s: {}, s2c: {} }] });
    topologies.push(topo);
    expect(listNamespaces()).not.toContain(ns);
    expect(ipSync(['link', 'show', device]).ok).toBe(false);
    // Our own live topology survives a second sweep.
    await Topology.create({ uplinks: [{ name: 'b', c2s: {}, s2c: {} }] }).then((t) =>
      topologies.push(t),
    );
    expect(listNamespaces()).toContain(topo.clientNs);
  });

  it.skipIf(!mptcpizeAvailable())(
    'runs the baselines: plain TCP on each uplink and kernel MPTCP joining every uplink',
    async () => {
      const report = await runBaselines(loadScenario('a-wifi-cable'), {
        durationMs: 4000,
        congestionControl: 'cubic',
      });
      expect(report.singles.map((s) => s.uplink)).toEqual(['wifi', 'cable']);
      // Each single path gets most of its link (slow start included in 4 s).
      expect(report.singles[0]!.goodputBps).toBeGreaterThan(0.8 * 30e6);
      expect(report.singles[1]!.goodputBps).toBeGreaterThan(0.8 * 20e6);
      const mptcp = report.runs.find((r) => r.system === 'mptcp')!;
      expect(mptcp.mptcp).toEqual({ capable: true, joins: 1 });
      // Both uplinks carried MPTCP data.
      for (const path of mptcp.paths)
        expect(path.bytes.reduce((a, b) => a + b, 0)).toBeGreaterThan(1e6);
      expect(report.mptcpBps).toBeGreaterThan(report.best.goodputBps);
    },
  );
});
