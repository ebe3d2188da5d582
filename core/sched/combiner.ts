import type { Objective } from '../wire/frame.js';
import { OBJECTIVES } from '../wire/frame.js';
import { BraidError } from '../util/errors.js';
import { JitterScheduler } from './jitter-scheduler.js';
import { LossScheduler } from './loss-scheduler.js';
import type { PathView, SchedContext } from './path-view.js';
import {
  PathDecision,
  arrivalBehindFlightMs,
  chooseOrWait,
  expectedArrivalMs,
  isReliable,
  markEligible,
} from './path-view.js';
import { ThroughputScheduler } from './throughput-scheduler.js';

/**
 * The app's objectives for one session (DESIGN §1 Apps view, §3 Objectives).
 *
 * How priorities, ε and the sliders combine — the whole rule:
 *
 * 1. Eligible paths: usable, role not "never", "backup" only when no primary or
 *    secondary path is usable, and only the guard's path in single-path mode. Each
 *    gets a gain g = 1.
 * 2. The priority list is walked in order up to "throughput" (appended at the end when
 *    the app did not list it, so that the sliders always have something to trade
 *    against). Each objective o before it is a stage with a metric, lower is better:
 *    latency = expected arrival of this packet (ms), jitter = RFC 3550 jitter (ms),
 *    loss = loss rate. The stage's best value b is taken over the "front" — the paths
 *    that no earlier stage penalized (g = 1) — so the order is lexicographic: a later
 *    objective only decides among paths the earlier ones found equal.
 * 3. Tolerance: a path within ε of b is equal to the best (ε: 5 ms latency, 5 ms
 *    jitter, 0.5 % loss; paper §III-A). Beyond it, its excess in units of ε is
 *    e = (m − b − ε) / ε, and its gain is multiplied by (1 − w) / ((1 − w) + w·e), where
 *    w is the slider weight of that objective against throughput: loss uses the
 *    loss↔throughput slider, latency and jitter the latency↔throughput one. So w = 1
 *    is a strict filter (any excess: gain 0, the static priority order of the paper),
 *    w = 0 ignores the objective (pure throughput), and w = 0.5 halves a path's share
 *    at one ε beyond the tolerance, quarters it at three. Gains below 2 % are 0.
 *    The jitter stage measures from the held steadiest path (hysteresis, see
 *    jitter-scheduler.ts) and also counts a path's RTT distance from it in ε units:
 *    mixing paths of different delay is itself jitter.
 * 4. Throughput stage: deficit round robin over the paths with g > 0, each quantum
 *    proportional to rate × g, with the ECF wait (throughput-scheduler.ts). Objectives
 *    listed after throughput do not change a striping decision.
 * 5. Unreliable sessions with loss ranked before throughput also duplicate: copies on
 *    the lowest-loss eligible paths that can send now until the residual loss is below
 *    the target, at most 1 + round((maxCopies − 1)·w_loss) copies; a packet of an
 *    app-limited session whose copy path is shut this instant (window, pacer) waits
 *    for it (loss-scheduler.ts `copyRetryAt`).
 * 6. Application feedback (`feedback()`) adds, for a while, to a slider weight (and
 *    adds its objective as a stage if the app did not rank it), or penalizes one path.
 *    A penalized path is held to its share in the throughput stage: it does not take
 *    the gaps of the others' pacers and windows, as a path with a stage gain does.
 */
export interface ObjectivePolicy {
  priorities: readonly Objective[];
  epsilon?: { latencyMs?: number; jitterMs?: number; loss?: number };
  /** Slider, 0..1: weight of loss against throughput. */
  lossVsThroughput?: number;
  /** Slider, 0..1: weight of latency (and jitter) against throughput. */
  latencyVsThroughput?: number;
  maxCopies?: number;
  targetLoss?: number;
}

/** Application-reported quality (DESIGN §3 FEEDBACK, paper §III-B "application feedback"). */
export interface FeedbackReport {
  /** What was bad: latency = too much delay, loss = too much loss, throughput = too slow. */
  objective: Objective;
  /** The path the application blames, when it knows. */
  pathId?: number;
  /** 0..1, default 0.5. */
  severity?: number;
}

export const DEFAULT_EPSILON = { latencyMs: 5, jitterMs: 5, loss: 0.005 } as const;
export const DEFAULT_SLIDER = 0.5;
/** How long one feedback report acts, fading linearly. */
export const FEEDBACK_MS = 10_000;
const MIN_GAIN = 0.02;
const MAX_PENALTIES = 16;

interface Penalty {
  pathId: number;
  objective: Objective;
  severity: number;
  until: number;
}

export class SessionScheduler {
  readonly throughput = new ThroughputScheduler();
  readonly jitter: JitterScheduler;
  readonly loss: LossScheduler;
  private order: Objective[] = [];
  private priorities: readonly Objective[] = [];
  private epsLatency: number = DEFAULT_EPSILON.latencyMs;
  private epsJitter: number = DEFAULT_EPSILON.jitterMs;
  private epsLoss: number = DEFAULT_EPSILON.loss;
  private wLoss = DEFAULT_SLIDER;
  private wLatency = DEFAULT_SLIDER;
  /** Feedback boosts to the two sliders and when each ends. */
  private boostLoss = 0;
  private boostLossUntil = 0;
  private boostLatency = 0;
  private boostLatencyUntil = 0;
  private readonly penalties: Penalty[] = [];
  private maxCopies = 2;
  /** Repairs placed by earliest arrival (for tests and the dashboard). */
  repairs = 0;
  /** Gains of the last pick, per candidate (for tests and the dashboard's live split). */
  gains = new Float64Array(8);
  private eligible = new Uint8Array(8);
  /** 1 for a path the app's feedback penalises: held to its share (throughput-scheduler.ts). */
  private held = new Uint8Array(8);
  private front = new Uint8Array(8);
  private metric = new Float64Array(8);
  /**
   * Weights in force for this pick, by OBJECTIVES index. Kept in a typed array because
   * V8 boxes a fractional number returned from or passed to a call it does not
   * inline: an allocation per packet (measured: scavenges with sliders at 0.5).
   */
  private readonly w = new Float64Array(OBJECTIVES.length);

  constructor(policy: ObjectivePolicy) {
    this.jitter = new JitterScheduler({ epsilonMs: policy.epsilon?.jitterMs });
    this.loss = new LossScheduler({
      epsilon: policy.epsilon?.loss,
      targetLoss: policy.targetLoss,
      maxCopies: policy.maxCopies,
    });
    this.setPolicy(policy);
  }

  /** Applies a changed app rule (priorities, ε, sliders) from the next pick on. */
  setPolicy(policy: ObjectivePolicy): void {
    const seen = new Set<Objective>();
    for (const o of policy.priorities) {
      if (!OBJECTIVES.includes(o) || seen.has(o)) {
        throw new BraidError('BRAID_ERR_CONFIG', 'priorities must be distinct objectives', {
          value: policy.priorities.join(','),
        });
      }
      seen.add(o);
    }
    const slider = (name: string, v: number | undefined): number => {
      const x = v ?? DEFAULT_SLIDER;
      if (!(x >= 0 && x <= 1)) {
        throw new BraidError('BRAID_ERR_CONFIG', `${name} must be within 0..1`, { value: v });
      }
      return x;
    };
    this.wLoss = slider('lossVsThroughput', policy.lossVsThroughput);
    this.wLatency = slider('latencyVsThroughput', policy.latencyVsThroughput);
    const eps = (name: string, v: number | undefined, d: number): number => {
      const x = v ?? d;
      if (!(x > 0 && Number.isFinite(x))) {
        throw new BraidError('BRAID_ERR_CONFIG', `epsilon ${name} must be positive`, { value: v });
      }
      return x;
    };
    this.epsLatency = eps('latencyMs', policy.epsilon?.latencyMs, DEFAULT_EPSILON.latencyMs);
    this.epsJitter = eps('jitterMs', policy.epsilon?.jitterMs, DEFAULT_EPSILON.jitterMs);
    this.epsLoss = eps('loss', policy.epsilon?.loss, DEFAULT_EPSILON.loss);
    this.maxCopies = policy.maxCopies ?? this.loss.maxCopies;
    this.priorities = [...policy.priorities];
    this.extras = [];
    this.rebuildOrder();
  }

  /** Objectives added as stages by feedback (their weight fades to 0 afterwards). */
  private extras: Objective[] = [];

  private rebuildOrder(add?: Objective): void {
    if (add !== undefined && !this.extras.includes(add)) this.extras.push(add);
    const before = this.priorities.includes('throughput')
      ? this.priorities.slice(0, this.priorities.indexOf('throughput'))
      : [...this.priorities];
    for (const o of this.extras) if (o !== 'throughput' && !before.includes(o)) before.push(o);
    this.order = [...before, 'throughput'];
  }

  /** Forgets a path that left the association (its DRR credit, its jitter hold). */
  removePath(pathId: number): void {
    this.throughput.remove(pathId);
    if (this.jitter.current === pathId) this.jitter.current = -1;
  }

  /** The stages in force, in order, ending with throughput. */
  get stages(): readonly Objective[] {
    return this.order;
  }

  /** Effective slider weight of an objective at `now` (feedback included). */
  weight(o: Objective, now: number): number {
    if (o === 'throughput') return 1;
    const ranked = this.priorities.indexOf(o);
    const tp = this.priorities.indexOf('throughput');
    const isRanked = ranked >= 0 && (tp < 0 || ranked < tp);
    let w: number;
    let boost: number;
    if (o === 'loss') {
      w = this.wLoss;
      boost = fade(this.boostLoss, this.boostLossUntil, now);
    } else {
      w = this.wLatency;
      boost = fade(this.boostLatency, this.boostLatencyUntil, now);
    }
    return Math.max(0, Math.min(1, (isRanked ? w : 0) + boost));
  }

  /**
   * Application feedback: nudges the scheduler for FEEDBACK_MS, fading linearly. With
   * a path: that path's share is cut by `severity` and its metric in the reported
   * objective's stage rises by 4·severity·ε. Without: the reported objective's slider
   * weight rises by `severity` (the objective becomes a stage if it was not one);
   * "throughput" lowers both sliders instead.
   */
  feedback(report: FeedbackReport, now: number): void {
    const severity = report.severity ?? 0.5;
    if (!OBJECTIVES.includes(report.objective) || !(severity >= 0 && severity <= 1)) {
      throw new BraidError('BRAID_ERR_USAGE', 'feedback needs an objective and severity 0..1', {
        value: `${String(report.objective)}/${severity}`,
      });
    }
    const until = now + FEEDBACK_MS;
    if (report.pathId !== undefined) {
      for (let i = this.penalties.length - 1; i >= 0; i--) {
        if (this.penalties[i]!.until <= now) this.penalties.splice(i, 1);
      }
      if (this.penalties.length >= MAX_PENALTIES) this.penalties.shift();
      this.penalties.push({ pathId: report.pathId, objective: report.objective, severity, until });
      return;
    }
    switch (report.objective) {
      case 'loss':
        this.boostLoss = Math.min(1, fade(this.boostLoss, this.boostLossUntil, now) + severity);
        this.boostLossUntil = until;
        this.rebuildOrder('loss');
        return;
      case 'latency':
      case 'jitter':
        this.boostLatency = Math.min(
          1,
          fade(this.boostLatency, this.boostLatencyUntil, now) + severity,
        );
        this.boostLatencyUntil = until;
        this.rebuildOrder(report.objective);
        return;
      case 'throughput':
        this.boostLoss = fade(this.boostLoss, this.boostLossUntil, now) - severity;
        this.boostLossUntil = until;
        this.boostLatency = fade(this.boostLatency, this.boostLatencyUntil, now) - severity;
        this.boostLatencyUntil = until;
        return;
    }
  }

  /** Penalty of path `id` in stage `o` (in ε units, 0 when none) and its gain factor. */
  private penalty(id: number, o: Objective | null, now: number): number {
    let sum = 0;
    for (let k = 0; k < this.penalties.length; k++) {
      const p = this.penalties[k]!;
      if (p.pathId !== id || p.until <= now) continue;
      if (o === null || p.objective === o) sum += fade(p.severity, p.until, now);
    }
    return sum;
  }

  pick(
    ctx: SchedContext,
    candidates: readonly PathView[],
    bytes: number,
    now: number,
  ): PathDecision {
    const n = candidates.length;
    if (this.gains.length < n) {
      this.gains = new Float64Array(n * 2);
      this.eligible = new Uint8Array(n * 2);
      this.held = new Uint8Array(n * 2);
      this.front = new Uint8Array(n * 2);
      this.metric = new Float64Array(n * 2);
    }
    const gains = this.gains;
    const eligible = this.eligible;
    markEligible(ctx, candidates, eligible);
    const reliable = isReliable(ctx.semantics);
    const hasPenalties = this.penalties.length > 0;
    const held = this.held;
    for (let i = 0; i < n; i++) {
      let g = eligible[i] === 1 ? 1 : 0;
      if (g > 0 && hasPenalties) g *= Math.max(0, 1 - this.penalty(candidates[i]!.id, null, now));
      held[i] = g < 1 && g > 0 ? 1 : 0;
      gains[i] = g;
    }
    let duplicate = false;
    const order = this.order;
    for (let k = 0; k < OBJECTIVES.length; k++) this.w[k] = this.weight(OBJECTIVES[k]!, now);
    for (let s = 0; s < order.length; s++) {
      const o = order[s]!;
      if (o === 'throughput') break;
      if (this.w[OBJECTIVES.indexOf(o)]! <= 0) continue;
      if (o === 'loss' && !reliable) duplicate = true;
      this.stage(o, candidates, bytes, now, reliable);
    }
    // A repair holds up everything the receiver got after it: it goes on the path
    // where it arrives first (among those the stages left), waiting for that path
    // rather than taking a slower one. By share (DRR) the lab's 1 MB transfers had a
    // lost DSL packet resent on the 3 Mbit/s tether, 90 ms after the rest.
    if (ctx.repair && reliable) return this.pickEarliest(candidates, gains, bytes, now);
    const decision = this.throughput.pickWeighted(
      ctx,
      candidates,
      gains,
      bytes,
      now,
      hasPenalties ? held : null,
    );
    if (duplicate && decision.index >= 0) {
      const copies = 1 + Math.round((this.maxCopies - 1) * this.w[OBJECTIVES.indexOf('loss')]!);
      this.loss.addDuplicates(decision, candidates, eligible, copies);
      const retryAt = this.loss.copyRetryAt(
        ctx,
        decision,
        candidates,
        eligible,
        copies,
        bytes,
        now,
      );
      if (retryAt >= 0) return decision.wait(retryAt);
      this.loss.addDeferred(decision, candidates, eligible, copies);
    }
    return decision;
  }

  private readonly repairDecision = new PathDecision();

  private pickEarliest(
    candidates: readonly PathView[],
    gains: Float64Array,
    bytes: number,
    now: number,
  ): PathDecision {
    let best = -1;
    let bestAt = Infinity;
    for (let i = 0; i < candidates.length; i++) {
      if (!(gains[i]! > 0)) continue;
      const t = arrivalBehindFlightMs(candidates[i]!, bytes, now, true);
      if (t < bestAt) {
        best = i;
        bestAt = t;
      }
    }
    const decision = chooseOrWait(this.repairDecision, candidates, best);
    if (decision.index >= 0) this.repairs++;
    return decision;
  }

  private stage(
    o: Objective,
    candidates: readonly PathView[],
    bytes: number,
    now: number,
    reliable: boolean,
  ): void {
    const n = candidates.length;
    const gains = this.gains;
    const metric = this.metric;
    const front = this.front;
    const eps = o === 'loss' ? this.epsLoss : o === 'latency' ? this.epsLatency : this.epsJitter;
    const hasPenalties = this.penalties.length > 0;
    const w = this.w[OBJECTIVES.indexOf(o)]!;
    let frontCount = 0;
    for (let i = 0; i < n; i++) {
      front[i] = gains[i] === 1 ? 1 : 0;
      frontCount += front[i]!;
    }
    if (frontCount === 0) for (let i = 0; i < n; i++) front[i] = gains[i]! > 0 ? 1 : 0;
    for (let i = 0; i < n; i++) {
      if (gains[i] === 0) continue;
      const v = candidates[i]!;
      let m =
        o === 'latency'
          ? expectedArrivalMs(v, bytes, now, reliable)
          : o === 'jitter'
            ? v.jitter
            : lossKnown(v)
              ? v.lossRate
              : 0;
      if (hasPenalties) m += 4 * eps * this.penalty(v.id, o, now);
      metric[i] = m;
    }
    let best = Infinity;
    let ref = -1;
    if (o === 'jitter') {
      // The held path is the reference while it stays in the front (hysteresis).
      ref = this.jitter.steadiest(candidates, front, now, metric);
      if (ref >= 0) best = metric[ref]!;
    } else {
      for (let i = 0; i < n; i++) {
        if (front[i] === 1 && metric[i]! < best && (o !== 'loss' || lossKnown(candidates[i]!)))
          best = metric[i]!;
      }
      // No loss figure to trust yet: only feedback penalties (on top of 0) set paths apart.
      if (o === 'loss' && best === Infinity) best = 0;
    }
    if (best === Infinity) return;
    for (let i = 0; i < n; i++) {
      if (gains[i] === 0) continue;
      let excess = Math.max(0, metric[i]! - best - eps) / eps;
      if (ref >= 0) {
        const apart = Math.abs(candidates[i]!.srtt - candidates[ref]!.srtt);
        excess = Math.max(excess, Math.max(0, apart - this.epsLatency) / this.epsLatency);
      }
      if (excess <= 0) continue;
      const g = w >= 1 ? 0 : (gains[i]! * (1 - w)) / (1 - w + w * excess);
      gains[i] = g < MIN_GAIN ? 0 : g;
    }
  }
}

/**
 * Packets a path's loss rate must rest on before the loss stage may weigh it, either as
 * the lowest loss or as a path to avoid. A rate from a handful of packets is noise: in
 * lab scenario e the 2 % path lost 2 of its first 5 packets, read 40 %, got a gain of 0
 * and so no traffic that could correct the figure — 24 packets in 4 s, the loss window
 * ageing out being its only way back. Unproven, a path keeps its full share and is
 * measured; unproven, a clean path is no reference either (0 lost of 10 would cut a
 * path known at 2 %). At 100 packets a 2 % path shows 2 ± 1.4 losses: not yet its
 * figure to the ε, but no longer 40 %. Duplication for unreliable sessions is the
 * other way round (loss-scheduler.ts LOSS_EVIDENCE_PACKETS: unproven counts as lossy).
 */
export const LOSS_STAGE_EVIDENCE_PACKETS = 100;

function lossKnown(v: PathView): boolean {
  return v.lossSamples >= LOSS_STAGE_EVIDENCE_PACKETS;
}

function fade(value: number, until: number, now: number): number {
  if (now >= until) return 0;
  return (value * (until - now)) / FEEDBACK_MS;
}
