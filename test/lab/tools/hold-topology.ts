import { Topology } from '../topology.js';

/**
 * Builds a one-uplink topology with a process running in each namespace, prints
 * what it made as one JSON line, and waits to be killed. lab.test.ts SIGKILLs it
 * to prove that a killed run leaves nothing behind.
 */
const topo = await Topology.create({
  uplinks: [{ name: 'a', c2s: { delayMs: 1 }, s2c: { delayMs: 1 } }],
});
const sleepers = (['client', 'server'] as const).map((side) => topo.spawn(side, 'sleep', ['600']));
process.stdout.write(
  JSON.stringify({
    clientNs: topo.clientNs,
    serverNs: topo.serverNs,
    forwarders: topo.uplinks.map((u) => u.link.pid),
    sleepers: sleepers.map((s) => s.pid),
  }) + '\n',
);
setInterval(() => undefined, 60_000);
