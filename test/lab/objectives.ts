import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { MessageSemantics } from '../../core/session/session.js';
import { BraidError } from '../../core/util/errors.js';
import type { Objective } from '../../core/wire/frame.js';
import {
  linkRunStats,
  MPTCP_PORT,
  nodeArgs,
  PLAIN_PORT,
  resetLinks,
  runClient,
  SETTLE_MS,
  sleep,
  startServer,
  startTimeline,
} from './baselines.js';
import { repoRoot } from './link.js';
import { bottleneckSpec, uplinkSpecs, type Scenario } from './scenario.js';
import { Topology } from './topology.js';
import type { MessageResult } from './tools/bulk.js';
import type { MessagesResult, MessagesServerDone } from './tools/braid-messages.js';

/**
 * The lab's objectives section (issue 4): Braid message sessions opened with one
 * objective first, measured beside the same traffic on each single path and on kernel
 * MPTCP, on the same emulated links in the same run.
 *
 * - latency: 1 KB at 50/s, reliable-unordered, priorities latency > throughput; its
 *   p99 one-way delay against the lowest single-path p99 and MPTCP's.
 * - jitter: the same traffic with jitter first; RFC 3550 jitter of the delays against
 *   the steadiest single path's.
 * - loss: small messages at 1000/s, unreliable-unordered, loss first (duplication);
 *   residual loss against 1.5 × the product of the paths' configured loss rates and
 *   against each path alone; the extra copies sent.
 * - deadline: unreliable-ordered with a playout deadline; out-of-order deliveries and
 *   deliveries later than deadline + the clock estimate's tolerance after send()
 *   (both must be 0; `deadlineToleranceMs`), late drops.
 * Single paths: TCP on each uplink alone (the suite's message test, bulk.ts) and a
 * Braid session of the same semantics on an association with that one path
 * ("pinned"). Every Braid run also reports its buffer peaks: the client's reorder
 * buffer, the server's send queue, against the configured bounds.
 */

const toolPath = fileURLToPath(new URL('./tools/braid-messages.ts', import.meta.url));

export type ObjectiveKind = 'latency' | 'jitter' | 'loss' | 'deadline';

/** Timer allowance: setTimeout on an idle event loop fires up to ~1 ms late; twice that. */
const DEADLINE_TIMER_SLACK_MS = 2;

/**
 * What may legitimately come on top of the playout deadline, measured delivered − sent
 * on one host. The receiver maps the sender's stamp to its clock with half the arriving
 * path's min RTT as that path's one-way delay (message-receiver.ts PlayoutClock). The
 * lab's links split their RTT evenly (scenario.ts), so the estimate is exact but for
 * what makes the two directions differ: a full data packet serialises longer than the
 * ACK that returns (at most one 1500-byte packet at the slowest direction's rate; jitter
 * and ACK delay only raise the measured min RTT, which moves deliveries earlier, not
 * later). Plus the receiver's timer slack. On an asymmetric real link the bound would
 * be half the path's min RTT instead.
 */
export function deadlineToleranceMs(scenario: Scenario): number {
  let serialisation = 0;
  for (const u of uplinkSpecs(scenario)) {
    const rate = Math.min(u.c2s.rateBps ?? Infinity, u.s2c.rateBps ?? Infinity);
    if (rate > 0 && Number.isFinite(rate))
      serialisation = Math.max(serialisation, (1500 * 8 * 1000) / rate);
  }
  return serialisation + DEADLINE_TIMER_SLACK_MS;
}

/** The objectives each scenario measures by default. */
export const SCENARIO_OBJECTIVES: Record<string, ObjectiveKind[]> = {
  'b-wifi-lte': ['latency', 'jitter', 'deadline'],
  'e-lossy-pair': ['loss'],
};

export const TARGETS = {
  /** Latency: p99 at most this above the lowest single-path p99. */
  latencyMarginMs: 5,
  /** Jitter: at most this above the steadiest single path's. */
  jitterMarginMs: 2,
  /** Loss: residual at most this × the product of the paths' loss rates. */
  lossFactor: 1.5,
};

export interface ObjectivesOptions {
  objectives?: ObjectiveKind[];
  /** Messages of the latency, jitter and deadline runs (1 KB at 50/s); default 500. */
  messages?: number;
  /** Messages of the loss run (200 B at 1000/s); default 20,000. */
  lossMessages?: number;
  /** Messages of each single-path loss run; default 5,000. */
  lossSingleMessages?: number;
  deadlineMs?: number;
  mptcp?: boolean;
  congestionControl?: string;
  progress?: (line: string) => void;
}

/** One measured message run: a Braid session or a TCP/MPTCP stream. */
export interface MessageRun {
  /** 'braid', 'braid-pinned:<uplink>', 'tcp:<uplink>', 'mptcp'. */
  system: string;
  label: string;
  count: number;
  received: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  jitterMs: number;
  /**
   * Worst lateness of the emulator's packet releases during the run (ms, any link):
   * above ~20 ms a starved forwarder, not the link, made the delay tail.
   */
  emulatorLateMaxMs?: number;
  /** Braid only: message copies that arrived on each uplink. */
  split?: Array<{ uplink: string; messages: number }>;
  /** Braid only: the client's full result and the server's counters. */
  braid?: MessagesResult;
  server?: MessagesServerDone;
  error?: string;
}

export interface LatencyObjective {
  braid: MessageRun;
  singles: MessageRun[];
  mptcp?: MessageRun;
  /** Lowest p99 over the single-path runs, and which. */
  bestSingle?: { system: string; p99Ms: number };
  withinMargin?: boolean;
  belowMptcp?: boolean;
}

export interface JitterObjective {
  braid: MessageRun;
  singles: MessageRun[];
  mptcp?: MessageRun;
  steadiest?: { system: string; jitterMs: number };
  withinMargin?: boolean;
}

export interface LossObjective {
  braid: MessageRun;
  singles: MessageRun[];
  /** Product of the uplinks' configured loss rates × TARGETS.lossFactor. */
  targetLoss: number;
  residualLoss: number;
  /** 95 % upper confidence bound of the residual loss (Poisson). */
  residualLossUpper95: number;
  bestSingleLoss?: { system: string; loss: number };
  /** Copies put on the wire per message handed over, minus one (0 = no duplicates). */
  extraCopiesRatio?: number;
  met?: boolean;
}

export interface DeadlineObjective {
  braid: MessageRun;
  deadlineMs: number;
  delivered: number;
  outOfOrder: number;
  /** Delivered more than deadlineMs after send() (strict, no tolerance). */
  afterDeadline: number;
  /** What the engine's clock estimate may add to the deadline (`deadlineToleranceMs`). */
  toleranceMs: number;
  /**
   * Delivered more than deadlineMs + toleranceMs after send(), both ends read on this
   * host's CLOCK_MONOTONIC; counted over the ten longest delays the tool keeps, so a
   * value of 10 means "at least 10". This is the figure `met` judges.
   */
  afterDeadlineTolerance: number;
  /** Arrived after their place was skipped (receiver), dropped. */
  late: number;
  /** Gaps given up on at the deadline (receiver). */
  skipped: number;
  /** Waited past the deadline in the sender's queue, never sent. */
  expired: number;
  met?: boolean;
}

/** Buffer peaks of one Braid run against the configured bounds (bytes; held: messages). */
export interface PeakRow {
  objective: string;
  system: string;
  reorderBytes: number;
  reorderBound: number;
  sendQueueBytes: number;
  sendBound: number;
  heldMessages: number;
  heldBound: number;
  within: boolean;
}

export interface ObjectivesReport {
  scenario: Scenario;
  latency?: LatencyObjective;
  jitter?: JitterObjective;
  loss?: LossObjective;
  deadline?: DeadlineObjective;
  peaks: PeakRow[];
}

/** Messages an unreliable-ordered receiver holds behind a gap at most (message-receiver.ts). */
const HELD_BOUND = 4096;
/** How long the server's "done" line may trail the client's result. */
const DONE_WAIT_MS = 8000;

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Upper end λ/n of the exact two-sided 95% Poisson interval for k events in n trials: P(X ≤ k; λ) = 0.025. */
export function poissonUpper95(k: number, n: number): number {
  if (n <= 0) return Number.NaN;
  const cdf = (lambda: number): number => {
    let term = Math.exp(-lambda);
    let sum = term;
    for (let i = 1; i <= k; i++) {
      term *= lambda / i;
      sum += term;
    }
    return sum;
  };
  let lo = 0;
  let hi = k + 10 + 10 * Math.sqrt(k + 1);
  for (let it = 0; it < 100; it++) {
    const mid = (lo + hi) / 2;
    if (cdf(mid) > 0.025) lo = mid;
    else hi = mid;
  }
  return hi / n;
}

export async function runObjectives(
  scenario: Scenario,
  options: ObjectivesOptions = {},
): Promise<ObjectivesReport> {
  const progress = options.progress ?? (() => undefined);
  const kinds = options.objectives ?? SCENARIO_OBJECTIVES[scenario.name] ?? [];
  const messages = options.messages ?? 500;
  const lossMessages = options.lossMessages ?? 20_000;
  const lossSingle = options.lossSingleMessages ?? 5_000;
  const deadlineMs = options.deadlineMs ?? 100;
  const withMptcp = options.mptcp ?? true;
  const cc = options.congestionControl;
  const needTcp = kinds.includes('latency') || kinds.includes('jitter');
  const report: ObjectivesReport = { scenario, peaks: [] };
  if (kinds.length === 0) return report;
  const topo = await Topology.create({
    uplinks: uplinkSpecs(scenario),
    mptcp: withMptcp && needTcp,
    ...(bottleneckSpec(scenario) === undefined ? {} : { bottleneck: bottleneckSpec(scenario)! }),
    ...(scenario.serverAddresses === undefined
      ? {}
      : { serverAddresses: scenario.serverAddresses }),
  });
  const servers: ChildProcess[] = [];
  try {
    if (needTcp) {
      servers.push(await startServer(topo, PLAIN_PORT, false, cc));
      if (withMptcp) servers.push(await startServer(topo, MPTCP_PORT, true, cc));
    }
    const braid = await startMessagesServer(topo);
    servers.push(braid.child);
    let runNo = 0;

    /** One client run with the links reset and the scenario's events started at connect. */
    const measure = async <T>(
      what: string,
      args: string[],
      mptcp: boolean,
      tool: string | undefined,
      limitMs: number,
    ): Promise<T & { emulatorLateMaxMs: number }> => {
      await resetLinks(topo, scenario);
      await sleep(SETTLE_MS);
      progress(`  ${scenario.name} objectives: ${what} ...`);
      await Promise.all(topo.uplinks.map((u) => u.link.stats(true)));
      let timeline: ReturnType<typeof startTimeline> | undefined;
      try {
        const result = await runClient(
          topo,
          args,
          mptcp,
          () => (timeline = startTimeline(topo, scenario, true)),
          tool,
          limitMs,
        );
        const links = await Promise.all(
          topo.uplinks.map((u) => linkRunStats(u.name, u.link, true)),
        );
        const emulatorLateMaxMs = links.reduce((m, l) => Math.max(m, l.lateMaxMs), 0);
        return { ...(result as unknown as T), emulatorLateMaxMs };
      } finally {
        await timeline
          ?.stop()
          .catch((err: unknown) => progress(`    (stopping events: ${message(err)})`));
      }
    };

    const braidRun = async (
      objective: string,
      system: string,
      label: string,
      via: string[],
      semantics: MessageSemantics,
      priorities: Objective[],
      count: number,
      intervalMs: number,
      size: number,
      deadline?: number,
    ): Promise<MessageRun> => {
      const tag = `${process.pid}-${++runNo}`;
      const args = [
        '--invite',
        braid.invite,
        '--via',
        via.join(','),
        '--semantics',
        semantics,
        '--priorities',
        priorities.join(','),
        '--count',
        String(count),
        '--interval-ms',
        String(intervalMs),
        '--size',
        String(size),
        '--tag',
        tag,
        ...(deadline === undefined ? [] : ['--deadline-ms', String(deadline)]),
      ];
      try {
        const r = await measure<MessagesResult>(
          `${label}: ${count} × ${size} B every ${intervalMs} ms`,
          args,
          false,
          toolPath,
          count * intervalMs + 60_000,
        );
        const server = await braid.done(tag, DONE_WAIT_MS);
        if (server === undefined) progress(`    (no counters from the server for ${tag})`);
        const run: MessageRun = {
          system,
          label,
          count: r.count,
          received: r.received,
          lost: r.lost,
          p50Ms: r.p50Ms,
          p99Ms: r.p99Ms,
          maxMs: r.maxMs,
          jitterMs: r.jitterMs,
          emulatorLateMaxMs: r.emulatorLateMaxMs,
          split: r.paths.map((p) => ({
            uplink: topo.uplinks.find((u) => u.address === p.local)?.name ?? p.local,
            messages: p.messages,
          })),
          braid: r,
          ...(server === undefined ? {} : { server }),
        };
        report.peaks.push(peakRow(objective, system, r, server));
        return run;
      } catch (err) {
        progress(`    failed: ${message(err)}`);
        return emptyRun(system, label, count, message(err));
      }
    };

    const tcpRun = async (system: string, label: string, args: string[], mptcp: boolean) => {
      try {
        const r = await measure<{ messages?: MessageResult }>(
          `${label}: ${messages} × 1 KB every 20 ms`,
          [...args, '--messages', String(messages), ...(cc === undefined ? [] : ['--cc', cc])],
          mptcp,
          undefined,
          messages * 20 + 60_000,
        );
        const m = r.messages;
        if (m === undefined) throw new BraidError('BRAID_ERR_INTERNAL', 'no message result');
        const run: MessageRun = {
          system,
          label,
          count: m.count,
          received: m.received,
          lost: m.lost,
          p50Ms: m.p50Ms,
          p99Ms: m.p99Ms,
          maxMs: m.maxMs,
          jitterMs: m.jitterMs ?? Number.NaN,
          emulatorLateMaxMs: r.emulatorLateMaxMs,
        };
        return run;
      } catch (err) {
        progress(`    failed: ${message(err)}`);
        return emptyRun(system, label, messages, message(err));
      }
    };

    const allVia = topo.uplinks.map((u) => u.address);
    // Single paths for latency and jitter, shared by both: TCP and a pinned Braid session.
    const rtSingles: MessageRun[] = [];
    let mptcpRun: MessageRun | undefined;
    if (needTcp) {
      for (const u of topo.uplinks) {
        rtSingles.push(
          await tcpRun(
            `tcp:${u.name}`,
            `TCP on ${u.name}`,
            ['--host', topo.serverAddress, '--port', String(PLAIN_PORT), '--bind', u.address],
            false,
          ),
        );
        rtSingles.push(
          await braidRun(
            'single path',
            `braid-pinned:${u.name}`,
            `Braid pinned to ${u.name}`,
            [u.address],
            'reliable-unordered',
            ['latency', 'throughput'],
            messages,
            20,
            1024,
          ),
        );
      }
      if (withMptcp)
        mptcpRun = await tcpRun(
          'mptcp',
          'MPTCP (kernel)',
          ['--host', topo.serverAddress, '--port', String(MPTCP_PORT)],
          true,
        );
    }
    const measured = (runs: MessageRun[]): MessageRun[] =>
      runs.filter((r) => r.error === undefined && r.received > 0);

    if (kinds.includes('latency')) {
      const run = await braidRun(
        'latency',
        'braid',
        'Braid, latency first',
        allVia,
        'reliable-unordered',
        ['latency', 'throughput'],
        messages,
        20,
        1024,
      );
      const ok = measured(rtSingles);
      const best = ok.length === 0 ? undefined : ok.reduce((a, b) => (b.p99Ms < a.p99Ms ? b : a));
      const good = run.error === undefined && run.lost === 0;
      report.latency = {
        braid: run,
        singles: rtSingles,
        ...(mptcpRun === undefined ? {} : { mptcp: mptcpRun }),
        ...(best === undefined ? {} : { bestSingle: { system: best.system, p99Ms: best.p99Ms } }),
        ...(best === undefined
          ? {}
          : { withinMargin: good && run.p99Ms <= best.p99Ms + TARGETS.latencyMarginMs }),
        ...(mptcpRun === undefined || mptcpRun.error !== undefined
          ? {}
          : { belowMptcp: good && run.p99Ms < mptcpRun.p99Ms }),
      };
    }
    if (kinds.includes('jitter')) {
      const run = await braidRun(
        'jitter',
        'braid',
        'Braid, jitter first',
        allVia,
        'reliable-unordered',
        ['jitter', 'throughput'],
        messages,
        20,
        1024,
      );
      const ok = measured(rtSingles);
      const steadiest =
        ok.length === 0 ? undefined : ok.reduce((a, b) => (b.jitterMs < a.jitterMs ? b : a));
      report.jitter = {
        braid: run,
        singles: rtSingles,
        ...(mptcpRun === undefined ? {} : { mptcp: mptcpRun }),
        ...(steadiest === undefined
          ? {}
          : {
              steadiest: { system: steadiest.system, jitterMs: steadiest.jitterMs },
              withinMargin:
                run.error === undefined &&
                run.jitterMs <= steadiest.jitterMs + TARGETS.jitterMarginMs,
            }),
      };
    }
    if (kinds.includes('deadline')) {
      const run = await braidRun(
        'deadline',
        'braid',
        `Braid, unreliable-ordered, ${deadlineMs} ms deadline`,
        allVia,
        'unreliable-ordered',
        ['latency', 'throughput'],
        messages,
        20,
        1024,
        deadlineMs,
      );
      const b = run.braid;
      const toleranceMs = deadlineToleranceMs(scenario);
      const afterDeadlineTolerance = (b?.worst ?? []).filter(
        (w) => w.ms > deadlineMs + toleranceMs,
      ).length;
      report.deadline = {
        braid: run,
        deadlineMs,
        delivered: b?.received ?? 0,
        outOfOrder: b?.outOfOrder ?? 0,
        afterDeadline: b?.afterDeadline ?? 0,
        toleranceMs,
        afterDeadlineTolerance,
        late: b?.stats.late ?? 0,
        skipped: b?.stats.skipped ?? 0,
        expired: run.server?.stats.expired ?? 0,
        ...(b === undefined
          ? {}
          : {
              met: b.outOfOrder === 0 && afterDeadlineTolerance === 0 && b.duplicated === 0,
            }),
      };
    }
    if (kinds.includes('loss')) {
      const singles: MessageRun[] = [];
      for (const u of topo.uplinks)
        singles.push(
          await braidRun(
            'loss (single path)',
            `braid-pinned:${u.name}`,
            `Braid pinned to ${u.name}`,
            [u.address],
            'unreliable-unordered',
            ['loss', 'throughput'],
            lossSingle,
            1,
            200,
          ),
        );
      const run = await braidRun(
        'loss',
        'braid',
        'Braid, loss first (duplication)',
        allVia,
        'unreliable-unordered',
        ['loss', 'throughput'],
        lossMessages,
        1,
        200,
      );
      const product = scenario.uplinks.reduce((p, u) => p * (u.loss ?? 0), 1);
      const targetLoss = product * TARGETS.lossFactor;
      const residualLoss = run.count > 0 ? run.lost / run.count : Number.NaN;
      const ok = measured(singles);
      const best =
        ok.length === 0
          ? undefined
          : ok.reduce((a, b) => (b.lost / b.count < a.lost / a.count ? b : a));
      const s = run.server?.stats;
      report.loss = {
        braid: run,
        singles,
        targetLoss,
        residualLoss,
        residualLossUpper95: poissonUpper95(run.lost, run.count),
        ...(best === undefined
          ? {}
          : { bestSingleLoss: { system: best.system, loss: best.lost / best.count } }),
        ...(s === undefined || s.queued === 0
          ? {}
          : { extraCopiesRatio: s.copiesSent / s.queued - 1 }),
        ...(run.error === undefined ? { met: residualLoss <= targetLoss } : {}),
      };
    }
    return report;
  } finally {
    for (const s of servers) s.stdin?.end();
    await topo.destroy();
  }
}

function emptyRun(system: string, label: string, count: number, error: string): MessageRun {
  const nan = Number.NaN;
  return {
    system,
    label,
    count,
    received: 0,
    lost: count,
    p50Ms: nan,
    p99Ms: nan,
    maxMs: nan,
    jitterMs: nan,
    error,
  };
}

function peakRow(
  objective: string,
  system: string,
  r: MessagesResult,
  server: MessagesServerDone | undefined,
): PeakRow {
  // The receiver's reorder buffer is on the client, the sender's queue on the server.
  const reorderBytes = r.peaks.reorderBytes;
  const sendQueueBytes = server?.peaks.sendQueueBytes ?? Number.NaN;
  const sendBound = server?.peaks.sendBound ?? r.peaks.sendBound;
  return {
    objective,
    system,
    reorderBytes,
    reorderBound: r.peaks.reorderBound,
    sendQueueBytes,
    sendBound,
    heldMessages: r.heldPeak,
    heldBound: HELD_BOUND,
    within:
      reorderBytes <= r.peaks.reorderBound &&
      // A send queue may exceed its limit by one application write (association.ts).
      !(sendQueueBytes > sendBound + 64 * 1024) &&
      r.heldPeak <= HELD_BOUND,
  };
}

/** The braid-messages server in the server namespace; `done(tag)` waits for a session's counters. */
async function startMessagesServer(topo: Topology): Promise<{
  child: ChildProcess;
  invite: string;
  done: (tag: string, waitMs: number) => Promise<MessagesServerDone | undefined>;
}> {
  const child = topo.spawn(
    'server',
    process.execPath,
    [
      ...nodeArgs(toolPath),
      'server',
      '--host',
      topo.serverAddress,
      '--addresses',
      topo.serverAddresses.join(','),
    ],
    { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  const finished = new Map<string, MessagesServerDone>();
  const waiters = new Map<string, (d: MessagesServerDone) => void>();
  const lines = createInterface({ input: child.stdout! });
  const invite = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { event: 'listening'; invite: string } | MessagesServerDone;
      if (msg.event === 'listening') resolve(msg.invite);
      else if (msg.event === 'done') {
        finished.set(msg.tag, msg);
        waiters.get(msg.tag)?.(msg);
      }
    });
    child.once('exit', (code) =>
      reject(
        new BraidError('BRAID_ERR_INTERNAL', `braid-messages server exited (${code}): ${stderr}`),
      ),
    );
  });
  const done = async (tag: string, waitMs: number): Promise<MessagesServerDone | undefined> => {
    const have = finished.get(tag);
    if (have !== undefined) return have;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiters.delete(tag);
        resolve(undefined);
      }, waitMs);
      waiters.set(tag, (d) => {
        clearTimeout(timer);
        waiters.delete(tag);
        resolve(d);
      });
    });
  };
  return { child, invite, done };
}
