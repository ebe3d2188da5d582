import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ENGINE_NODE_FLAGS } from '../../core/util/engine-flags.js';
import { BraidError } from '../../core/util/errors.js';
import { repoRoot, type LinkHandle } from './link.js';
import {
  bottleneckSpec,
  directionParams,
  loadTrace,
  uplinkSpecs,
  type Scenario,
} from './scenario.js';
import { Topology, type Side } from './topology.js';
import type { BulkResult } from './tools/bulk.js';

/**
 * The systems Braid is measured against, on the same emulated links in the same run:
 * one plain kernel TCP flow on each uplink alone (the best of them is "best single
 * path") and the kernel's MPTCP over all uplinks (in-kernel path manager, one
 * `subflow` endpoint per uplink; the load tool forced onto IPPROTO_MPTCP by
 * `mptcpize run`, which swaps the protocol in socket() through LD_PRELOAD).
 */

const bulkPath = fileURLToPath(new URL('./tools/bulk.ts', import.meta.url));
const braidBulkPath = fileURLToPath(new URL('./tools/braid-bulk.ts', import.meta.url));
export const PLAIN_PORT = 5201;
export const MPTCP_PORT = 5202;
/** Pause between runs so the previous run's queues drain. */
export const SETTLE_MS = 500;
const SAMPLE_MS = 100;

export interface RunOptions {
  /** Congestion control of every TCP socket (per socket: namespaces may not pick it). */
  congestionControl?: string;
  /** Overrides the scenario's measurement length. */
  durationMs?: number;
  /** Skip the MPTCP run (e.g. mptcpize missing). */
  skipMptcp?: boolean;
  /** Skip the Braid run. */
  skipBraid?: boolean;
  /** Progress lines. */
  progress?: (line: string) => void;
}

export interface PathSeries {
  uplink: string;
  /** Bytes delivered by the link in the data direction per SAMPLE_MS, from the run's start. */
  bytes: number[];
}

/** What each link saw during one run: drops and the forwarder's release lateness. */
export interface LinkRunStats {
  uplink: string;
  deliveredBytes: number;
  lostPackets: number;
  queueDropPackets: number;
  downDropPackets: number;
  lateMeanMs: number;
  lateMaxMs: number;
  /** The link's idle time between packets during the run, and of it in gaps over 5 ms (DirectionStats). */
  idleMs: number;
  idleLongMs: number;
  idleLongGaps: number;
}

export interface SystemRun {
  /** 'tcp:<uplink>' or 'mptcp'. */
  system: string;
  label: string;
  result: BulkResult;
  /** Per-uplink delivered bytes over time, for failover plots. */
  paths: PathSeries[];
  /** Data-direction link counters for this run. */
  links: LinkRunStats[];
  /** MPTCP only: whether MP_CAPABLE was negotiated and how many subflows joined. */
  mptcp?: { capable: boolean; joins: number };
}

export interface ScenarioReport {
  scenario: Scenario;
  congestionControl: string;
  durationMs: number;
  runs: SystemRun[];
  /** Goodputs in bit/s. */
  singles: Array<{ uplink: string; goodputBps: number }>;
  sumSinglesBps: number;
  best: { uplink: string; goodputBps: number };
  mptcpBps?: number;
  braidBps?: number;
}

export function mptcpizeAvailable(): boolean {
  return spawnSync('mptcpize', ['--help']).error === undefined;
}

/**
 * Node arguments of a lab tool: the engine's V8 flags (core/util/engine-flags.ts), so
 * that Braid runs in the lab as its launchers start it, and tsx's loader. The TCP and
 * MPTCP tools take the same flags; their data path is the kernel's.
 */
export function nodeArgs(tool = bulkPath): string[] {
  return [...ENGINE_NODE_FLAGS, '--import', 'tsx', tool];
}

/** Starts `braid relay` (through the lab's braid-bulk tool) in the server namespace; resolves with its invite. */
export async function startBraidServer(
  topo: Topology,
  /** braid-bulk server options, e.g. ['--uncoupled'] or ['--cc', 'cubic']. */
  extraArgs: string[] = [],
): Promise<{ child: ChildProcess; invite: string }> {
  const child = topo.spawn(
    'server',
    process.execPath,
    [
      ...nodeArgs(braidBulkPath),
      'server',
      '--host',
      topo.serverAddress,
      '--addresses',
      topo.serverAddresses.join(','),
      ...extraArgs,
    ],
    { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  const invite = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve((JSON.parse(line) as { invite: string }).invite));
    child.once('exit', (code) =>
      reject(new BraidError('BRAID_ERR_INTERNAL', `braid relay exited (${code}): ${stderr}`)),
    );
  });
  return { child, invite };
}

/** Starts the load tool's server in the server namespace; resolves once it listens. */
export async function startServer(
  topo: Topology,
  port: number,
  mptcp: boolean,
  cc: string | undefined,
): Promise<ChildProcess> {
  const args = [
    ...nodeArgs(),
    'server',
    '--port',
    String(port),
    ...(cc === undefined ? [] : ['--cc', cc]),
  ];
  const child = mptcp
    ? topo.spawn('server', 'mptcpize', ['run', process.execPath, ...args], {
        cwd: repoRoot,
        stdio: ['pipe', 'pipe', 'pipe'],
      })
    : topo.spawn('server', process.execPath, args, {
        cwd: repoRoot,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', () => resolve());
    child.once('exit', (code) =>
      reject(
        new BraidError('BRAID_ERR_INTERNAL', `bulk server exited (${code}): ${stderr}`, {
          value: port,
        }),
      ),
    );
  });
  return child;
}

/** A client run killed because it was still going after its time limit. */
export class RunTimeoutError extends BraidError {
  constructor(readonly limitMs: number) {
    super('BRAID_ERR_INTERNAL', `bulk client still running after ${limitMs} ms; killed`, {
      value: limitMs,
    });
  }
}

/**
 * Runs one bulk client; `onConnected` fires when its connection is up (events start
 * then). With `timeoutMs`, a client still running then is killed and the run fails.
 */
export async function runClient(
  topo: Topology,
  args: string[],
  mptcp: boolean,
  onConnected: () => void,
  tool = bulkPath,
  timeoutMs?: number,
): Promise<BulkResult> {
  const full = [...nodeArgs(tool), 'client', ...args];
  const child = mptcp
    ? topo.spawn('client', 'mptcpize', ['run', process.execPath, ...full], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : topo.spawn('client', process.execPath, full, {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  let timedOut = false;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
  return new Promise<BulkResult>((resolve, reject) => {
    let result: BulkResult | undefined;
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { event?: string } & BulkResult;
      if (msg.event === 'connected') onConnected();
      else result = msg;
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (result !== undefined) resolve(result);
      else if (timedOut) reject(new RunTimeoutError(timeoutMs!));
      else
        reject(
          new BraidError(
            'BRAID_ERR_INTERNAL',
            `bulk client exited (${code}) without a result: ${stderr}`,
          ),
        );
    });
  });
}

/** MPTcpExt counters of a namespace (/proc/net/netstat is per network namespace). */
export async function mptcpCounters(topo: Topology, side: Side): Promise<Map<string, number>> {
  const text = await topo.exec(side, 'cat', ['/proc/net/netstat']);
  const lines = text.split('\n').filter((l) => l.startsWith('MPTcpExt:'));
  const counters = new Map<string, number>();
  if (lines.length < 2) return counters;
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1);
  names.forEach((n, i) => counters.set(n, Number(values[i] ?? 0)));
  return counters;
}

/**
 * Forgets what the kernel learned from earlier TCP connections (tcp_metrics: the
 * slow-start threshold and RTT per address pair, on by default), so that no system's
 * bulk run starts from state an earlier run on the same uplinks left (MPTCP runs after
 * the single-path TCP runs). Measured, it made no visible difference to MPTCP's first
 * second in scenario a (44.6 Mbit/s before, 44.2 after): its clean start is HyStart's.
 * Later runs to the same addresses (1 MB transfers) start warm for every system, as
 * Braid's listener keeps its own (path-metrics-cache.ts).
 */
export async function flushTcpMetrics(topo: Topology): Promise<void> {
  await topo.exec('server', 'ip', ['tcp_metrics', 'flush']);
  await topo.exec('client', 'ip', ['tcp_metrics', 'flush']);
}

/** Puts every link back to the scenario's parameters, traces stopped. */
export async function resetLinks(topo: Topology, scenario: Scenario): Promise<void> {
  await Promise.all(
    scenario.uplinks.map(async (up, i) => {
      const link = topo.uplinks[i]!.link;
      await link.set('c2s', directionParams(up, 'c2s'));
      await link.set('s2c', directionParams(up, 's2c'));
      await link.setTrace('both', null);
    }),
  );
}

/**
 * Starts the scenario's traces, applies its events relative to now and samples
 * per-link delivered bytes every SAMPLE_MS (one request per link at a time, so a
 * slow forwarder shows as a gap instead of a pile-up); returns a stop function that
 * cancels what has not happened yet.
 */
export function startTimeline(
  topo: Topology,
  scenario: Scenario,
  download: boolean,
): { stop: () => Promise<PathSeries[]> } {
  const failures: unknown[] = [];
  const record = (err: unknown): void => void failures.push(err);
  scenario.uplinks.forEach((up, i) => {
    if (up.trace !== undefined) {
      topo.uplinks[i]!.link.setTrace('both', loadTrace(up.trace)).catch(record);
    }
  });
  const timers = (scenario.events ?? []).map((ev) =>
    setTimeout(() => {
      topo
        .uplink(ev.uplink)
        .link.set(ev.dir ?? 'both', ev.set)
        .catch(record);
    }, ev.atMs),
  );
  const start = performance.now();
  const series: PathSeries[] = topo.uplinks.map((u) => ({ uplink: u.name, bytes: [] }));
  const samples: Array<Array<{ at: number; bytes: number }>> = topo.uplinks.map(() => []);
  const inFlight: Array<Promise<void> | null> = topo.uplinks.map(() => null);
  const sample = (): void => {
    topo.uplinks.forEach((u, i) => {
      if (inFlight[i] !== null) return;
      inFlight[i] = u.link
        .stats()
        .then((s) => {
          const bytes = download ? s.s2c.deliveredBytes : s.c2s.deliveredBytes;
          samples[i]!.push({ at: performance.now() - start, bytes });
        })
        .catch(record)
        .finally(() => (inFlight[i] = null));
    });
  };
  sample();
  const sampler = setInterval(sample, SAMPLE_MS);
  return {
    stop: async () => {
      timers.forEach(clearTimeout);
      clearInterval(sampler);
      await Promise.all(inFlight.filter((p): p is Promise<void> => p !== null));
      if (failures.length > 0) {
        throw new BraidError('BRAID_ERR_INTERNAL', 'a scenario event or sample failed', {
          cause: failures[0],
        });
      }
      // Spread each interval's bytes over the SAMPLE_MS bins it covers.
      samples.forEach((points, i) => {
        const bins = series[i]!.bytes;
        for (let k = 1; k < points.length; k++) {
          const a = points[k - 1]!;
          const b = points[k]!;
          const first = Math.floor(a.at / SAMPLE_MS);
          const last = Math.max(first, Math.floor(b.at / SAMPLE_MS) - 1);
          const share = (b.bytes - a.bytes) / (last - first + 1);
          for (let bin = first; bin <= last; bin++) {
            while (bins.length <= bin) bins.push(0);
            bins[bin]! += share;
          }
        }
      });
      return series;
    },
  };
}

export async function linkRunStats(
  uplink: string,
  link: LinkHandle,
  download: boolean,
): Promise<LinkRunStats> {
  const all = await link.stats();
  const d = download ? all.s2c : all.c2s;
  return {
    uplink,
    deliveredBytes: d.deliveredBytes,
    lostPackets: d.lostPackets,
    queueDropPackets: d.queueDropPackets,
    downDropPackets: d.downDropPackets,
    lateMeanMs: d.deliveredPackets > 0 ? d.lateMsSum / d.deliveredPackets : 0,
    lateMaxMs: d.lateMsMax,
    idleMs: d.idleMs,
    idleLongMs: d.idleLongMs,
    idleLongGaps: d.idleLongGaps,
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Builds the scenario's topology, runs every baseline, tears it down. */
export async function runBaselines(
  scenario: Scenario,
  options: RunOptions = {},
): Promise<ScenarioReport> {
  const progress = options.progress ?? (() => undefined);
  const cc = options.congestionControl;
  const durationMs = options.durationMs ?? scenario.durationMs;
  const download = (scenario.direction ?? 'download') === 'download';
  const withMptcp = options.skipMptcp !== true;
  const topo = await Topology.create({
    uplinks: uplinkSpecs(scenario),
    mptcp: withMptcp,
    ...(bottleneckSpec(scenario) === undefined ? {} : { bottleneck: bottleneckSpec(scenario)! }),
    ...(scenario.serverAddresses === undefined
      ? {}
      : { serverAddresses: scenario.serverAddresses }),
  });
  try {
    await startServer(topo, PLAIN_PORT, false, cc);
    if (withMptcp) await startServer(topo, MPTCP_PORT, true, cc);
    const runs: SystemRun[] = [];
    const common = [
      '--host',
      topo.serverAddress,
      '--ms',
      String(durationMs),
      ...(cc === undefined ? [] : ['--cc', cc]),
    ];
    if (!download) common.push('--upload');

    const measure = async (
      system: string,
      label: string,
      args: string[],
      mptcp: boolean,
      tool = bulkPath,
    ): Promise<SystemRun> => {
      await resetLinks(topo, scenario);
      await sleep(SETTLE_MS);
      progress(`  ${scenario.name}: ${label} ...`);
      await Promise.all(topo.uplinks.map((u) => u.link.stats(true)));
      let timeline: ReturnType<typeof startTimeline> | undefined;
      const result = await runClient(
        topo,
        args,
        mptcp,
        () => {
          timeline = startTimeline(topo, scenario, download);
        },
        tool,
      );
      const paths = timeline === undefined ? [] : await timeline.stop();
      const links = await Promise.all(
        topo.uplinks.map((u) => linkRunStats(u.name, u.link, download)),
      );
      return { system, label, result, paths, links };
    };

    for (const u of topo.uplinks) {
      await flushTcpMetrics(topo);
      const run = await measure(
        `tcp:${u.name}`,
        `TCP on ${u.name}`,
        [...common, '--port', String(PLAIN_PORT), '--bind', u.address],
        false,
      );
      runs.push(run);
    }
    let mptcpBps: number | undefined;
    if (withMptcp) {
      await flushTcpMetrics(topo);
      const before = await mptcpCounters(topo, 'client');
      const run = await measure(
        'mptcp',
        'MPTCP (kernel)',
        [...common, '--port', String(MPTCP_PORT)],
        true,
      );
      const after = await mptcpCounters(topo, 'client');
      const delta = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
      run.mptcp = {
        capable: delta('MPCapableSYNACKRX') > 0,
        joins: delta('MPJoinSynAckRx'),
      };
      runs.push(run);
      mptcpBps = run.result.goodputBps;
    }
    let braidBps: number | undefined;
    if (options.skipBraid !== true) {
      if (!download)
        throw new BraidError('BRAID_ERR_USAGE', 'the Braid lab run measures downloads only');
      const braid = await startBraidServer(topo);
      try {
        const run = await measure(
          'braid',
          'Braid (UDP, a path per uplink)',
          [
            '--invite',
            braid.invite,
            '--via',
            topo.uplinks.map((u) => u.address).join(','),
            '--ms',
            String(durationMs),
          ],
          false,
          braidBulkPath,
        );
        runs.push(run);
        braidBps = run.result.goodputBps;
      } finally {
        braid.child.stdin!.end();
      }
    }
    const singles = runs
      .filter((r) => r.system.startsWith('tcp:'))
      .map((r) => ({ uplink: r.system.slice(4), goodputBps: r.result.goodputBps }));
    const best = singles.reduce((a, b) => (b.goodputBps > a.goodputBps ? b : a));
    return {
      scenario,
      congestionControl: cc ?? 'kernel default',
      durationMs,
      runs,
      singles,
      sumSinglesBps: singles.reduce((s, x) => s + x.goodputBps, 0),
      best,
      ...(mptcpBps === undefined ? {} : { mptcpBps }),
      ...(braidBps === undefined ? {} : { braidBps }),
    };
  } finally {
    await topo.destroy();
  }
}
