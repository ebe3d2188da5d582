import { fileURLToPath } from 'node:url';
import { BraidError } from '../../core/util/errors.js';
import {
  mptcpizeAvailable,
  MPTCP_PORT,
  PLAIN_PORT,
  runClient,
  SETTLE_MS,
  sleep,
  startBraidServer,
  startServer,
} from './baselines.js';
import { bottleneckSpec, uplinkSpecs, type Scenario } from './scenario.js';
import { Topology } from './topology.js';
import type { BulkResult } from './tools/bulk.js';

/**
 * The coupled congestion control fairness test (stretch goal (a)): both uplinks meet
 * at one shared bottleneck, and a multipath flow over both runs against one plain
 * TCP flow through the same bottleneck. RFC 6356 §2's goal is that the multipath
 * flow take no more than a single TCP flow would there: about half each. Two plain
 * TCP flows (one per uplink) give the reference split on the same links. Braid runs
 * twice: with its default (coupled) congestion control, where issue 4 asks for at
 * most 1.3× the TCP flow's rate, and with the LIA opt-out (a second relay started
 * with --uncoupled, since in a download the relay's paths carry the data), which
 * should take more — two uncoupled flows against one.
 */

/** Issue 4: a coupled multipath flow takes at most this multiple of one TCP flow's rate. */
export const COUPLED_MAX_RATIO = 1.3;

const braidBulkPath = fileURLToPath(new URL('./tools/braid-bulk.ts', import.meta.url));

export interface FairnessFlow {
  label: string;
  goodputBps: number;
  /** Of the run's total goodput. */
  share: number;
}

export interface FairnessRun {
  label: string;
  flows: FairnessFlow[];
  /** Multipath runs: the multipath flow's goodput over the competing TCP flow's. */
  ratio?: number;
  error?: string;
}

export interface FairnessReport {
  scenario: Scenario;
  durationMs: number;
  bottleneckMbps: number;
  runs: FairnessRun[];
}

export async function runFairness(
  scenario: Scenario,
  options: {
    durationMs?: number;
    congestionControl?: string;
    mptcp?: boolean;
    progress?: (line: string) => void;
  } = {},
): Promise<FairnessReport> {
  const bottleneck = bottleneckSpec(scenario);
  if (bottleneck === undefined || scenario.bottleneck === undefined || scenario.uplinks.length < 2)
    throw new BraidError(
      'BRAID_ERR_CONFIG',
      'the fairness test needs two uplinks and a shared bottleneck',
      {
        value: scenario.name,
      },
    );
  const progress = options.progress ?? (() => undefined);
  const durationMs = options.durationMs ?? scenario.durationMs;
  const cc = options.congestionControl;
  const withMptcp = (options.mptcp ?? true) && mptcpizeAvailable();
  const topo = await Topology.create({
    uplinks: uplinkSpecs(scenario),
    mptcp: withMptcp,
    bottleneck,
  });
  const servers: Array<{ stdin: NodeJS.WritableStream | null }> = [];
  try {
    servers.push(await startServer(topo, PLAIN_PORT, false, cc));
    if (withMptcp) servers.push(await startServer(topo, MPTCP_PORT, true, cc));
    const braid = await startBraidServer(topo);
    servers.push(braid.child);
    const braidUncoupled = await startBraidServer(topo, ['--uncoupled']);
    servers.push(braidUncoupled.child);
    const [first, second] = topo.uplinks;
    const ccArgs = cc === undefined ? [] : ['--cc', cc];
    const window = ['--ms', String(durationMs)];
    const tcp = (bind: string, port = PLAIN_PORT): string[] => [
      '--host',
      topo.serverAddress,
      '--port',
      String(port),
      ...(bind === '' ? [] : ['--bind', bind]),
      ...ccArgs,
      ...window,
    ];
    interface Flow {
      label: string;
      args: string[];
      mptcp: boolean;
      tool?: string;
    }
    const plain = (u: typeof first): Flow => ({
      label: `TCP on ${u!.name}`,
      args: tcp(u!.address),
      mptcp: false,
    });
    const braidFlow = (label: string, invite: string): Flow => ({
      label,
      args: ['--invite', invite, '--via', topo.uplinks.map((u) => u.address).join(','), ...window],
      mptcp: false,
      tool: braidBulkPath,
    });
    const plans: Array<{ label: string; flows: Flow[]; multipath?: boolean }> = [
      { label: 'TCP alone (capacity)', flows: [plain(first)] },
      { label: 'TCP vs TCP (reference)', flows: [plain(first), plain(second)] },
      {
        label: 'Braid (coupled, default) vs TCP',
        flows: [braidFlow('Braid over both uplinks', braid.invite), plain(first)],
        multipath: true,
      },
      {
        label: 'Braid uncoupled vs TCP',
        flows: [
          braidFlow('Braid over both uplinks, --uncoupled', braidUncoupled.invite),
          plain(first),
        ],
        multipath: true,
      },
    ];
    if (withMptcp)
      plans.push({
        label: 'MPTCP vs TCP',
        flows: [
          { label: 'MPTCP over both uplinks', args: tcp('', MPTCP_PORT), mptcp: true },
          plain(first),
        ],
        multipath: true,
      });
    const runs: FairnessRun[] = [];
    for (const plan of plans) {
      await sleep(SETTLE_MS * 2);
      progress(`  ${scenario.name}: fairness: ${plan.label} ...`);
      try {
        const results: BulkResult[] = await Promise.all(
          plan.flows.map((f) =>
            runClient(topo, f.args, f.mptcp, () => undefined, f.tool, durationMs + 60_000),
          ),
        );
        const total = results.reduce((t, r) => t + r.goodputBps, 0);
        const tcpRate = results[1]?.goodputBps ?? 0;
        runs.push({
          label: plan.label,
          ...(plan.multipath === true && tcpRate > 0
            ? { ratio: results[0]!.goodputBps / tcpRate }
            : {}),
          flows: plan.flows.map((f, i) => ({
            label: f.label,
            goodputBps: results[i]!.goodputBps,
            share: total > 0 ? results[i]!.goodputBps / total : 0,
          })),
        });
      } catch (err) {
        runs.push({
          label: plan.label,
          flows: [],
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    return { scenario, durationMs, bottleneckMbps: scenario.bottleneck.rateMbps, runs };
  } finally {
    for (const s of servers) s.stdin?.end();
    await topo.destroy();
  }
}

export function formatFairness(report: FairnessReport): string {
  const lines = [
    `### ${report.scenario.name}: fairness at a shared ${report.bottleneckMbps} Mbit/s bottleneck`,
    '',
    `Flows start together and each measures ${report.durationMs / 1000} s of goodput; the share is of the run's total. ` +
      'RFC 6356 §2: a multipath flow should take no more than one TCP flow would at a shared bottleneck (about 0.50). ' +
      `"× TCP": the multipath flow's goodput over the competing TCP flow's; issue 4 asks for at most ${COUPLED_MAX_RATIO} coupled, more uncoupled.`,
    '',
    '| run | flow | goodput Mbit/s | share | × TCP |',
    '|---|---|---:|---:|---:|',
  ];
  for (const run of report.runs) {
    if (run.error !== undefined)
      lines.push(`| ${run.label} | failed: ${run.error.slice(0, 120)} | | | |`);
    run.flows.forEach((f, i) => {
      const ratio = i === 0 && run.ratio !== undefined ? run.ratio.toFixed(2) : '';
      lines.push(
        `| ${run.label} | ${f.label} | ${(f.goodputBps / 1e6).toFixed(2)} | ${f.share.toFixed(2)} | ${ratio} |`,
      );
    });
  }
  return lines.join('\n');
}
