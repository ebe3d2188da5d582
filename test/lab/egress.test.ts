import { afterAll, describe, expect, it } from 'vitest';
import { EgressPinner } from '../../core/iface/egress.js';
import { createLogger } from '../../core/util/log.js';
import { fileURLToPath } from 'node:url';
import { runClient, startBraidServer } from './baselines.js';
import { deleteNamespaceSync, labUnavailableReason, listNamespaces, nsRun } from './netns.js';
import { NAME_PREFIX, Topology } from './topology.js';

/**
 * Egress pinning (issue: uplinks, item 2) on a client namespace set up like a laptop
 * where nothing arranged source routing: the main table has one default route, via
 * uplink 0. A Braid path bound to uplink 1's address then leaves by uplink 0; after
 * Braid pins egress (policy routing), it leaves by uplink 1. Which link carried the
 * client's packets is read from the emulated links' own counters. Needs root.
 */

const reason = labUnavailableReason();
if (reason !== null) console.warn(`egress pinning lab test skipped: ${reason}`);
const quiet = createLogger({ level: 'error' });
const braidBulkPath = fileURLToPath(new URL('./tools/braid-bulk.ts', import.meta.url));

const ours = (): string[] =>
  listNamespaces().filter((n) => n.startsWith(`${NAME_PREFIX}${process.pid}-`));

describe.skipIf(reason !== null)('egress pinning in the lab (root)', () => {
  let topo: Topology | undefined;
  afterAll(async () => {
    await topo?.destroy();
    ours().forEach(deleteNamespaceSync);
  });

  it('with one default route, uplink 1 carries nothing until Braid pins egress; then it carries its path', async () => {
    const fast = { rateBps: 50_000_000, delayMs: 5 };
    topo = await Topology.create({
      uplinks: [
        { name: 'wifi', c2s: fast, s2c: fast },
        { name: 'cable', c2s: fast, s2c: fast },
      ],
      singleDefaultRoute: true,
      sourceRouting: false,
      log: quiet,
    });
    const t = topo;
    const { child: server, invite } = await startBraidServer(t);
    try {
      const via = t.uplinks.map((u) => u.address).join(',');
      const download = async (): Promise<number> => {
        for (const u of t.uplinks) await u.link.stats(true);
        const r = await runClient(
          t,
          ['--invite', invite, '--via', via, '--ms', '1500'],
          false,
          () => undefined,
          braidBulkPath,
          30_000,
        );
        expect(r.bytes).toBeGreaterThan(0);
        const cable = await t.uplink('cable').link.stats();
        return cable.c2s.offeredPackets;
      };
      const pinner = new EgressPinner({
        logger: quiet,
        ip: (args) => nsRun(t.clientNs, 'ip', args),
      });
      const cable = t.uplink('cable');
      const server0 = t.serverAddresses[0]!;
      // Before: the kernel sends uplink 1's packets out of uplink 0.
      expect(await pinner.egressDevice(cable.address, server0)).toBe(t.uplink('wifi').clientDevice);
      const before = await download();

      const index = Number(
        (
          JSON.parse(
            await nsRun(t.clientNs, 'ip', ['-json', 'link', 'show', cable.clientDevice]),
          ) as Array<{
            ifindex: number;
          }>
        )[0]!.ifindex,
      );
      const status = await pinner.pin(
        { name: cable.clientDevice, index, address: cable.address, gateway: cable.gateway },
        server0,
      );
      expect(status.kind).toBe('pinned');
      // Uplink 0 is routed by the main table already: nothing to do there.
      const wifi = t.uplink('wifi');
      expect(
        (await pinner.pin({ name: wifi.clientDevice, index: 1, address: wifi.address }, server0))
          .kind,
      ).toBe('routed');
      const after = await download();
      console.info(`egress pinning: client packets on uplink 1 before ${before}, after ${after}`);
      expect(before).toBeLessThan(20);
      // ACKs of a 1.5 s download: tens of packets (fewer on a loaded machine).
      expect(after).toBeGreaterThan(10);
      await pinner.unpinAll();
      expect(await pinner.egressDevice(cable.address, server0)).toBe(wifi.clientDevice);
    } finally {
      // The relay removes its folder of keys and exits when its stdin ends.
      server.stdin?.end();
    }
  });
});
