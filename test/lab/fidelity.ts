import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BraidError } from '../../core/util/errors.js';
import { repoRoot } from './link.js';
import { directionParams, type UplinkScenario } from './scenario.js';
import { Topology } from './topology.js';
import type { BulkResult } from './tools/bulk.js';

/**
 * The emulator's fidelity check (issue 3): one kernel TCP flow through a single
 * 20 Mbit/s, 40 ms RTT link must reach at least 90% of 20 Mbit/s, and ping must see
 * the configured RTT. Goodput counts application bytes, so TCP/IP headers
 * (52 of every 1500 bytes with timestamps) already cost 3.5% of the rate.
 */

export const FIDELITY_LINK: UplinkScenario = { name: 'link', rateMbps: 20, rttMs: 40 };
export const FIDELITY_MIN_RATIO = 0.9;

export interface FidelityResult {
  rateBps: number;
  rttMs: number;
  goodputBps: number;
  ratio: number;
  ping: { minMs: number; avgMs: number; maxMs: number; count: number };
  /** Mean and maximum lateness of the forwarder's releases, ms. */
  lateMeanMs: number;
  lateMaxMs: number;
  queueDrops: number;
}

const bulkPath = fileURLToPath(new URL('./tools/bulk.ts', import.meta.url));

export async function measureFidelity(
  options: { durationMs?: number; congestionControl?: string; link?: UplinkScenario } = {},
): Promise<FidelityResult> {
  const link = options.link ?? FIDELITY_LINK;
  const topo = await Topology.create({
    uplinks: [
      { name: link.name, c2s: directionParams(link, 'c2s'), s2c: directionParams(link, 's2c') },
    ],
  });
  try {
    // ping first, on an idle link: 20 probes, 50 ms apart.
    const pingOut = await topo.exec('client', 'ping', [
      '-n',
      '-q',
      '-c',
      '20',
      '-i',
      '0.05',
      topo.serverAddress,
    ]);
    const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\//.exec(pingOut);
    if (m === null)
      throw new BraidError('BRAID_ERR_INTERNAL', 'cannot parse ping output', { value: pingOut });
    const ping = { minMs: Number(m[1]), avgMs: Number(m[2]), maxMs: Number(m[3]), count: 20 };

    const cc = options.congestionControl;
    const server = topo.spawn(
      'server',
      process.execPath,
      [
        '--import',
        'tsx',
        bulkPath,
        'server',
        '--port',
        '5201',
        ...(cc === undefined ? [] : ['--cc', cc]),
      ],
      { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) =>
      createInterface({ input: server.stdout! }).once('line', () => resolve()),
    );
    const before = await topo.uplinks[0]!.link.stats();
    const out = await topo.exec('client', process.execPath, [
      '--import',
      'tsx',
      bulkPath,
      'client',
      '--host',
      topo.serverAddress,
      '--port',
      '5201',
      '--ms',
      String(options.durationMs ?? 10_000),
      ...(cc === undefined ? [] : ['--cc', cc]),
    ]);
    const after = await topo.uplinks[0]!.link.stats();
    const result = JSON.parse(out.trim().split('\n').pop()!) as BulkResult;
    const rateBps = link.rateMbps * 1e6;
    const delivered = after.s2c.deliveredPackets - before.s2c.deliveredPackets;
    return {
      rateBps,
      rttMs: link.rttMs,
      goodputBps: result.goodputBps,
      ratio: result.goodputBps / rateBps,
      ping,
      lateMeanMs: delivered > 0 ? (after.s2c.lateMsSum - before.s2c.lateMsSum) / delivered : 0,
      lateMaxMs: after.s2c.lateMsMax,
      queueDrops: after.s2c.queueDropPackets - before.s2c.queueDropPackets,
    };
  } finally {
    await topo.destroy();
  }
}

export function formatFidelity(f: FidelityResult): string {
  const verdict = f.ratio >= FIDELITY_MIN_RATIO ? 'PASS' : 'FAIL';
  return [
    `Emulator fidelity (${f.rateBps / 1e6} Mbit/s, ${f.rttMs} ms RTT, one kernel TCP flow): ` +
      `${(f.goodputBps / 1e6).toFixed(2)} Mbit/s goodput = ${(f.ratio * 100).toFixed(1)}% of the rate ` +
      `(>= ${FIDELITY_MIN_RATIO * 100}% required) ${verdict}`,
    `  ping RTT min/avg/max ${f.ping.minMs}/${f.ping.avgMs}/${f.ping.maxMs} ms (configured ${f.rttMs} ms); ` +
      `forwarder release lateness mean ${(f.lateMeanMs * 1000).toFixed(0)} µs, max ${f.lateMaxMs.toFixed(2)} ms; ` +
      `${f.queueDrops} queue drops`,
  ].join('\n');
}
