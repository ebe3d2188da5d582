import { fileURLToPath } from 'node:url';
import {
  linkRunStats,
  MPTCP_PORT,
  flushTcpMetrics,
  mptcpCounters,
  PLAIN_PORT,
  resetLinks,
  runClient,
  RunTimeoutError,
  SETTLE_MS,
  sleep,
  startBraidServer,
  startServer,
  startTimeline,
  type LinkRunStats,
  type PathSeries,
} from './baselines.js';
import { bottleneckSpec, uplinkSpecs, type Scenario } from './scenario.js';
import { Topology } from './topology.js';
import { medianItem } from './stats.js';
import { cpuBetween, sampleSched, type CpuShare, type SchedSample } from './schedstat.js';
import type { BulkResult, MessageResult } from './tools/bulk.js';
import { WARM_UP_BYTES } from './tools/warm-up.js';
import type { IntegrityCounts } from './tools/payload.js';

/**
 * The lab benchmark's measurements (issue 5): for each system on the same emulated
 * links — plain TCP on each uplink alone, kernel MPTCP over all, Braid over all —
 * bulk goodput over a window, completion times of fixed transfers, one-way delay of
 * 1 KB messages at 50 per second on an otherwise idle connection, and what the
 * payload check found. Every measurement is a fresh connection (a fresh association
 * for Braid) with the links reset and the scenario's events and traces started when
 * it is up, so each system sees the same link history.
 */

const braidBulkPath = fileURLToPath(new URL('./tools/braid-bulk.ts', import.meta.url));

export interface SuiteOptions {
  congestionControl?: string;
  /** Bulk window; the scenario's durationMs by default. */
  bulkMs?: number;
  /**
   * Bulk windows per system, taken in rounds (every system once per round, so a slow
   * spell of the machine falls on all of them alike); the report gives the median
   * window. Default 1.
   */
  bulkRounds?: number;
  /** Transfer sizes whose completion time is measured (a size may repeat); default 3 × 1 MB and 20 MB. */
  transfers?: number[];
  /** Messages of the delay test (1 KB every 20 ms); default 300 (6 s); 0 skips it. */
  messages?: number;
  /** Uplinks that get a single-path TCP run: all by default. */
  tcpUplinks?: string[];
  mptcp?: boolean;
  braid?: boolean;
  /** A transfer or message run still going after this is killed and reported as failed. */
  timeoutMs?: number;
  progress?: (line: string) => void;
}

export interface TransferOutcome {
  bytes: number;
  /** From the request (connection up) to the last byte, ms. */
  completionMs?: number;
  /** Connection (TCP) or association (Braid: TLS + path joins) set-up before it, ms. */
  connectMs?: number;
  integrity?: IntegrityCounts;
  /** Still running at the time limit (ms): killed, its completion time is above that. */
  timedOutMs?: number;
  error?: string;
}

export interface SystemReport {
  /** 'braid', 'mptcp' or 'tcp:<uplink>'. */
  system: string;
  label: string;
  /** The bulk window with the median goodput (of bulkRunsBps). */
  bulk?: BulkResult;
  /** Goodput of every bulk window, in the order run (bit/s). */
  bulkRunsBps?: number[];
  bulkError?: string;
  /** Per-uplink bytes the link delivered in the data direction per 100 ms, bulk run. */
  paths: PathSeries[];
  links: LinkRunStats[];
  transfers: TransferOutcome[];
  messages?: MessageResult;
  messagesError?: string;
  /** MPTCP bulk run only: MP_CAPABLE negotiated, subflows joined. */
  mptcp?: { capable: boolean; joins: number };
  /** The sending server's main thread over the bulk run (the client's is bulk.cpu). */
  serverCpu?: CpuShare;
  /** Scenarios that take an uplink down and bring it back: how fast the sum came back. */
  failover?: FailoverRecovery;
  /** Application bytes lost, duplicated or corrupt over all of this system's runs. */
  integrity: IntegrityCounts & { messagesLost: number; messagesDuplicated: number };
}

/** A system's report before any run: no results, nothing counted. */
export function emptySystemReport(system: string, label: string): SystemReport {
  return {
    system,
    label,
    paths: [],
    links: [],
    transfers: [],
    integrity: {
      checkedBytes: 0,
      lostBytes: 0,
      duplicatedBytes: 0,
      corruptBytes: 0,
      messagesLost: 0,
      messagesDuplicated: 0,
    },
  };
}

export interface SuiteReport {
  scenario: Scenario;
  congestionControl: string;
  bulkMs: number;
  messages: number;
  systems: SystemReport[];
  singles: Array<{ uplink: string; goodputBps: number }>;
  sumSinglesBps: number;
  best?: { uplink: string; goodputBps: number };
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Bins of the path series (baselines.ts SAMPLE_MS). */
const BIN_MS = 100;
/** The rate before the outage: the mean over this long just before the link went down. */
const PRE_WINDOW_MS = 2000;
/** Back to the sum: the first window this long, after the return, whose mean reaches … */
const RECOVERY_WINDOW_MS = 300;
/** … this share of the rate before the outage. */
const RECOVERY_SHARE = 0.9;

/**
 * Issue 5 scenario d: from the bulk run's per-link series (bytes the links delivered in
 * the data direction per 100 ms, all uplinks summed — so retransmissions count, as on a
 * wire), the rate over the PRE_WINDOW_MS before the first `down` event, and the time
 * from the matching `up` event to the END of the first RECOVERY_WINDOW_MS window after
 * it whose mean is at least RECOVERY_SHARE of that rate (undefined: never within the
 * run). The window's own length is included, so 300 ms is the least it can report.
 */
export interface FailoverRecovery {
  uplink: string;
  downAtMs: number;
  upAtMs: number;
  preBps: number;
  windowMs: number;
  share: number;
  recoveryMs?: number;
}

export function failoverRecovery(
  scenario: Scenario,
  paths: PathSeries[],
): FailoverRecovery | undefined {
  const events = scenario.events ?? [];
  const down = events.find((e) => e.set.down === true);
  if (down === undefined) return undefined;
  const up = events.find(
    (e) => e.uplink === down.uplink && e.set.down === false && e.atMs > down.atMs,
  );
  if (up === undefined || paths.length === 0) return undefined;
  const n = Math.max(...paths.map((p) => p.bytes.length));
  const sum: number[] = [];
  for (let i = 0; i < n; i++) sum.push(paths.reduce((t, p) => t + (p.bytes[i] ?? 0), 0));
  const rate = (from: number, to: number): number => {
    let bytes = 0;
    for (let i = from; i < to; i++) bytes += sum[i] ?? 0;
    return (bytes * 8) / (((to - from) * BIN_MS) / 1000);
  };
  const downBin = Math.floor(down.atMs / BIN_MS);
  const preBps = rate(Math.max(0, downBin - PRE_WINDOW_MS / BIN_MS), downBin);
  const report: FailoverRecovery = {
    uplink: down.uplink,
    downAtMs: down.atMs,
    upAtMs: up.atMs,
    preBps,
    windowMs: RECOVERY_WINDOW_MS,
    share: RECOVERY_SHARE,
  };
  const width = RECOVERY_WINDOW_MS / BIN_MS;
  for (let k = Math.ceil(up.atMs / BIN_MS); k + width <= n; k++) {
    if (rate(k, k + width) >= RECOVERY_SHARE * preBps) {
      report.recoveryMs = (k + width) * BIN_MS - up.atMs;
      break;
    }
  }
  return report;
}

export async function runSuite(
  scenario: Scenario,
  options: SuiteOptions = {},
): Promise<SuiteReport> {
  const progress = options.progress ?? (() => undefined);
  const cc = options.congestionControl;
  const bulkMs = options.bulkMs ?? scenario.durationMs;
  const bulkRounds = options.bulkRounds ?? 1;
  if (!Number.isInteger(bulkRounds) || bulkRounds < 1)
    throw new Error(`bulkRounds must be a whole number >= 1, not ${bulkRounds}`);
  // Three 1 MB transfers: one such run swings by ±30% (slow start's overshoot lands
  // differently each time); the report gives the median.
  const transfers = options.transfers ?? [1_000_000, 1_000_000, 1_000_000, 20_000_000];
  const messages = options.messages ?? 300;
  const timeoutMs = options.timeoutMs ?? 90_000;
  const withMptcp = options.mptcp ?? true;
  const withBraid = options.braid ?? true;
  if ((scenario.direction ?? 'download') !== 'download')
    throw new Error(`the lab benchmark measures downloads; ${scenario.name} is an upload`);
  const topo = await Topology.create({
    uplinks: uplinkSpecs(scenario),
    mptcp: withMptcp,
    ...(bottleneckSpec(scenario) === undefined ? {} : { bottleneck: bottleneckSpec(scenario)! }),
    ...(scenario.serverAddresses === undefined
      ? {}
      : { serverAddresses: scenario.serverAddresses }),
  });
  const servers: Array<{ stdin: NodeJS.WritableStream | null }> = [];
  try {
    const plain = await startServer(topo, PLAIN_PORT, false, cc);
    servers.push(plain);
    const mptcpServer = withMptcp ? await startServer(topo, MPTCP_PORT, true, cc) : undefined;
    if (mptcpServer !== undefined) servers.push(mptcpServer);
    let invite = '';
    let braidPid: number | undefined;
    let braidChild: { stdin: NodeJS.WritableStream | null } | undefined;
    const startBraid = async (): Promise<void> => {
      const braid = await startBraidServer(topo, ['--warm-up', String(WARM_UP_BYTES)]);
      servers.push(braid.child);
      braidChild = braid.child;
      invite = braid.invite;
      braidPid = braid.child.pid;
    };
    if (withBraid) await startBraid();
    const ccArgs = cc === undefined ? [] : ['--cc', cc];
    interface System {
      system: string;
      label: string;
      args: string[];
      mptcp: boolean;
      tool?: string;
      /** The server process that sends to this system's client. */
      serverPid: number | undefined;
    }
    const systems: System[] = [];
    if (withBraid)
      systems.push({
        system: 'braid',
        label: 'Braid (UDP, a path per uplink)',
        args: [
          '--invite',
          invite,
          '--via',
          topo.uplinks.map((u) => u.address).join(','),
          // A long-lived engine runs optimised code; a fresh process does not (warm-up.ts).
          '--warm-up',
          String(WARM_UP_BYTES),
        ],
        mptcp: false,
        tool: braidBulkPath,
        serverPid: braidPid,
      });
    for (const u of topo.uplinks) {
      if (options.tcpUplinks !== undefined && !options.tcpUplinks.includes(u.name)) continue;
      systems.push({
        system: `tcp:${u.name}`,
        label: `TCP on ${u.name}`,
        args: [
          '--host',
          topo.serverAddress,
          '--port',
          String(PLAIN_PORT),
          '--bind',
          u.address,
          ...ccArgs,
        ],
        mptcp: false,
        serverPid: plain.pid,
      });
    }
    if (withMptcp)
      systems.push({
        system: 'mptcp',
        label: 'MPTCP (kernel)',
        args: ['--host', topo.serverAddress, '--port', String(MPTCP_PORT), ...ccArgs],
        mptcp: true,
        serverPid: mptcpServer?.pid,
      });

    const measure = async (
      sys: System,
      mode: string[],
      what: string,
      limitMs: number,
    ): Promise<{
      result: BulkResult;
      paths: PathSeries[];
      links: LinkRunStats[];
      serverCpu: CpuShare | undefined;
    }> => {
      await resetLinks(topo, scenario);
      await sleep(SETTLE_MS);
      progress(`  ${scenario.name}: ${sys.label}: ${what} ...`);
      await Promise.all(topo.uplinks.map((u) => u.link.stats(true)));
      let timeline: ReturnType<typeof startTimeline> | undefined;
      const pid = sys.serverPid;
      let serverStart: SchedSample | undefined;
      try {
        const result = await runClient(
          topo,
          [...sys.args, ...mode],
          sys.mptcp,
          () => {
            timeline = startTimeline(topo, scenario, true);
            serverStart = pid === undefined ? undefined : sampleSched(pid);
          },
          sys.tool,
          limitMs,
        );
        const serverCpu = cpuBetween(serverStart, pid === undefined ? undefined : sampleSched(pid));
        const stopping = timeline;
        timeline = undefined;
        const paths = stopping === undefined ? [] : await stopping.stop();
        const links = await Promise.all(
          topo.uplinks.map((u) => linkRunStats(u.name, u.link, true)),
        );
        return { result, paths, links, serverCpu };
      } finally {
        // A failed run still stops its events before the next run resets the links;
        // the run's own error is the one reported, this one only noted.
        await timeline
          ?.stop()
          .catch((err: unknown) =>
            progress(`    (stopping events after a failed run: ${message(err)})`),
          );
      }
    };

    const reports = systems.map((sys) => emptySystemReport(sys.system, sys.label));
    const count = (report: SystemReport, i: IntegrityCounts | undefined): void => {
      if (i === undefined) return;
      report.integrity.checkedBytes += i.checkedBytes;
      report.integrity.lostBytes += i.lostBytes;
      report.integrity.duplicatedBytes += i.duplicatedBytes;
      report.integrity.corruptBytes += i.corruptBytes;
    };
    // Bulk windows first, in rounds over the systems; each system's median window is
    // its result. One window swings by ±0.5 Mbit/s in scenario a (the machine's other
    // load stalls a user-space sender, never the kernel's), more than Braid and MPTCP
    // differ there.
    const bulkRuns = systems.map((): Array<Awaited<ReturnType<typeof measure>>> => []);
    for (let round = 0; round < bulkRounds; round++) {
      for (const [k, sys] of systems.entries()) {
        const report = reports[k]!;
        if (sys.system === 'braid' && round > 0) {
          // Every bulk window starts cold, as the kernel's after flushTcpMetrics: a
          // fresh Braid server, without the path metrics of the window before.
          braidChild?.stdin?.end();
          await startBraid();
          sys.args[sys.args.indexOf('--invite') + 1] = invite;
          sys.serverPid = braidPid;
        }
        await flushTcpMetrics(topo);
        const before = sys.mptcp && round === 0 ? await mptcpCounters(topo, 'client') : undefined;
        try {
          // The bulk client ends its own window; the limit only catches a hung run.
          const run = await measure(
            sys,
            ['--ms', String(bulkMs)],
            `bulk ${bulkMs / 1000} s` + (bulkRounds > 1 ? ` (${round + 1}/${bulkRounds})` : ''),
            bulkMs + timeoutMs,
          );
          bulkRuns[k]!.push(run);
          count(report, run.result.integrity);
        } catch (err) {
          report.bulkError ??= message(err);
          progress(`    failed: ${message(err)}`);
        }
        if (before !== undefined) {
          const after = await mptcpCounters(topo, 'client');
          const delta = (key: string): number => (after.get(key) ?? 0) - (before.get(key) ?? 0);
          report.mptcp = {
            capable: delta('MPCapableSYNACKRX') > 0,
            joins: delta('MPJoinSynAckRx'),
          };
        }
      }
    }
    for (const [k, runs] of bulkRuns.entries()) {
      if (runs.length === 0) continue;
      const report = reports[k]!;
      report.bulkRunsBps = runs.map((r) => r.result.goodputBps);
      const run = medianItem(runs, (r) => r.result.goodputBps)!;
      report.bulk = run.result;
      report.paths = run.paths;
      const failover = failoverRecovery(scenario, run.paths);
      if (failover !== undefined) report.failover = failover;
      report.links = run.links;
      if (run.serverCpu !== undefined) report.serverCpu = run.serverCpu;
    }
    for (const [k, sys] of systems.entries()) {
      const report = reports[k]!;
      await flushTcpMetrics(topo);
      for (const bytes of transfers) {
        try {
          const run = await measure(
            sys,
            ['--bytes', String(bytes)],
            `${bytes / 1e6} MB`,
            timeoutMs,
          );
          const r = run.result;
          report.transfers.push({
            bytes,
            ...(r.completionMs === undefined ? {} : { completionMs: r.completionMs }),
            ...(r.connectMs === undefined ? {} : { connectMs: r.connectMs }),
            ...(r.integrity === undefined ? {} : { integrity: r.integrity }),
          });
          count(report, r.integrity);
        } catch (err) {
          report.transfers.push({
            bytes,
            error: message(err),
            ...(err instanceof RunTimeoutError ? { timedOutMs: err.limitMs } : {}),
          });
          progress(`    failed: ${message(err)}`);
        }
      }
      if (messages > 0) {
        try {
          const run = await measure(
            sys,
            ['--messages', String(messages)],
            `${messages} messages`,
            messages * 20 + timeoutMs,
          );
          const m = run.result.messages;
          if (m !== undefined) {
            report.messages = m;
            report.integrity.messagesLost += m.lost;
            report.integrity.messagesDuplicated += m.duplicated;
            report.integrity.corruptBytes += m.corrupt * 1024;
          }
        } catch (err) {
          report.messagesError = message(err);
          progress(`    failed: ${report.messagesError}`);
        }
      }
    }
    const singles = reports
      .filter((r) => r.system.startsWith('tcp:'))
      .map((r) => ({ uplink: r.system.slice(4), goodputBps: r.bulk?.goodputBps ?? 0 }));
    const best =
      singles.length === 0
        ? undefined
        : singles.reduce((a, b) => (b.goodputBps > a.goodputBps ? b : a));
    return {
      scenario,
      congestionControl: cc ?? 'kernel default',
      bulkMs,
      messages,
      systems: reports,
      singles,
      sumSinglesBps: singles.reduce((s, x) => s + x.goodputBps, 0),
      ...(best === undefined ? {} : { best }),
    };
  } finally {
    for (const s of servers) s.stdin?.end();
    await topo.destroy();
  }
}
