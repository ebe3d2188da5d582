import type { Objective } from '../wire/frame.js';
import { BraidError } from '../util/errors.js';
import { JitterEstimator } from '../paths/estimators.js';
import { SlidingSum } from '../paths/windowed-filter.js';
import type { PathView } from './path-view.js';
import { markEligible } from './path-view.js';
import type { SchedContext } from './path-view.js';

/**
 * "Never worse than one uplink" (issue 4 item 4): striping must not do worse than the
 * best single path would. The guard keeps the best single path's expected
 * performance in view (from the estimators, `bestSingle()`), measures what the
 * striped session actually gets over a sliding window, and when striping is worse by
 * a margin for a sustained time it switches the session to that single path
 * (SchedContext.onlyPathId). It tries striping again later, with exponential backoff:
 * a retry that fails again before its probation is over doubles the wait; one that
 * lasts the probation resets it.
 *
 * What is compared is the session's first objective:
 * - throughput: goodput (bytes the peer acknowledged, per second) < (1 − margin) ×
 *   the best single path's delivery rate — only while the session is not
 *   application-limited (an app that sends little cannot show the paths' capacity);
 * - latency: mean delivery latency > the best path's srtt + margin (samples: time from
 *   handing data to the session until the peer acknowledged it in order, so that the
 *   cost of reordering across paths is counted);
 * - jitter: RFC 3550 jitter of those latency samples > best path's jitter + margin;
 * - loss: loss fraction seen by the session > best path's loss + margin.
 * Pure: every input carries its time.
 */
export interface GuardConfig {
  objective: Objective;
  windowMs?: number;
  /** Worse for this long before falling back. */
  sustainMs?: number;
  goodputMargin?: number;
  latencyMarginMs?: number;
  jitterMarginMs?: number;
  lossMargin?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A striping retry that stays fine this long resets the backoff. */
  probationMs?: number;
}

export const DEFAULT_GUARD: Required<Omit<GuardConfig, 'objective'>> = {
  windowMs: 5000,
  sustainMs: 10_000,
  goodputMargin: 0.1,
  latencyMarginMs: 10,
  jitterMarginMs: 5,
  lossMargin: 0.01,
  retryBaseMs: 30_000,
  retryMaxMs: 600_000,
  probationMs: 30_000,
};

/** The best single path's expected figures. */
export interface SingleEstimate {
  pathId: number;
  /** Bytes per second. */
  goodput: number;
  /** Round-trip ms. */
  latencyMs: number;
  jitterMs: number;
  lossRate: number;
}

export type GuardMode = 'striping' | 'single';

export interface GuardSnapshot {
  mode: GuardMode;
  singlePathId: number;
  fallbacks: number;
  backoffMs: number;
  nextRetryAt: number;
  measured: { goodput: number; latencyMs: number; jitterMs: number; lossRate: number };
  best: SingleEstimate;
}

export function createSingleEstimate(): SingleEstimate {
  return { pathId: -1, goodput: 0, latencyMs: Infinity, jitterMs: Infinity, lossRate: 1 };
}

export class NeverWorseGuard {
  private readonly c: Required<GuardConfig>;
  private mode_: GuardMode = 'striping';
  private singlePathId_ = -1;
  private readonly delivered: SlidingSum;
  private readonly latencySum: SlidingSum;
  private readonly latencyCount: SlidingSum;
  private readonly lossLost: SlidingSum;
  private readonly lossTotal: SlidingSum;
  private readonly jitter = new JitterEstimator();
  private modeSince: number;
  private worseSince = -1;
  private backoff: number;
  private nextRetryAt_ = Infinity;
  private readonly lastBest = createSingleEstimate();
  fallbacks = 0;

  constructor(config: GuardConfig, now: number) {
    this.c = { ...DEFAULT_GUARD, ...config };
    for (const [name, v] of Object.entries(this.c)) {
      if (name === 'objective') continue;
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
        throw new BraidError('BRAID_ERR_CONFIG', `guard ${name} must be a number >= 0`, {
          value: v,
        });
      }
    }
    if (!(this.c.windowMs > 0)) {
      throw new BraidError('BRAID_ERR_CONFIG', 'guard windowMs must be positive', {
        value: this.c.windowMs,
      });
    }
    const w = this.c.windowMs;
    this.delivered = new SlidingSum(w, 10);
    this.latencySum = new SlidingSum(w, 10);
    this.latencyCount = new SlidingSum(w, 10);
    this.lossLost = new SlidingSum(w, 10);
    this.lossTotal = new SlidingSum(w, 10);
    this.modeSince = now;
    this.backoff = this.c.retryBaseMs;
  }

  get mode(): GuardMode {
    return this.mode_;
  }

  /** The path to keep to in single mode, -1 while striping (feeds SchedContext.onlyPathId). */
  get singlePathId(): number {
    return this.mode_ === 'single' ? this.singlePathId_ : -1;
  }

  get nextRetryAt(): number {
    return this.nextRetryAt_;
  }

  // ------------------------------------------------------------ measurements

  /** Session bytes the peer acknowledged (or delivered, for unreliable sessions). */
  onDelivered(now: number, bytes: number): void {
    this.delivered.add(now, bytes);
  }

  /** One delivery latency sample (ms): handed to the session → acknowledged in order. */
  onLatency(now: number, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.latencySum.add(now, ms);
    this.latencyCount.add(now, 1);
    this.jitter.onTransit(ms);
  }

  /** Session packets lost (after repair, for unreliable sessions) out of `total`. */
  onLoss(now: number, lost: number, total: number): void {
    this.lossLost.add(now, lost);
    this.lossTotal.add(now, total);
  }

  measuredGoodput(now: number): number {
    return (this.delivered.sum(now) / this.c.windowMs) * 1000;
  }

  measuredLatency(now: number): number {
    const n = this.latencyCount.sum(now);
    return n === 0 ? NaN : this.latencySum.sum(now) / n;
  }

  measuredLoss(now: number): number {
    const n = this.lossTotal.sum(now);
    return n === 0 ? NaN : this.lossLost.sum(now) / n;
  }

  // --------------------------------------------------------------- decisions

  /**
   * The best single path for `objective` among the eligible views, its figures in
   * `out` (reused; pathId -1 when none). Throughput: highest delivery rate × (1 −
   * loss); latency: lowest srtt; jitter: lowest jitter; loss: lowest loss rate.
   */
  static bestSingle(
    objective: Objective,
    ctx: SchedContext,
    views: readonly PathView[],
    scratch: Uint8Array,
    out: SingleEstimate,
  ): SingleEstimate {
    const all = { ...ctx, onlyPathId: -1 };
    markEligible(all, views, scratch);
    let best = -1;
    let bestScore = Infinity;
    for (let i = 0; i < views.length; i++) {
      if (scratch[i] === 0) continue;
      const v = views[i]!;
      const score =
        objective === 'throughput'
          ? -v.deliveryRate * (1 - v.lossRate)
          : objective === 'latency'
            ? v.srtt
            : objective === 'jitter'
              ? v.jitter
              : v.lossRate;
      if (score < bestScore) {
        best = i;
        bestScore = score;
      }
    }
    if (best < 0) {
      Object.assign(out, createSingleEstimate());
      return out;
    }
    const v = views[best]!;
    out.pathId = v.id;
    out.goodput = v.deliveryRate * (1 - v.lossRate);
    out.latencyMs = v.srtt;
    out.jitterMs = v.jitter;
    out.lossRate = v.lossRate;
    return out;
  }

  /** Whether the striped session is measurably worse than `best` now. */
  worse(now: number, best: SingleEstimate, appLimited: boolean): boolean {
    const c = this.c;
    switch (c.objective) {
      case 'throughput':
        return !appLimited && this.measuredGoodput(now) < (1 - c.goodputMargin) * best.goodput;
      case 'latency': {
        const l = this.measuredLatency(now);
        return !Number.isNaN(l) && l > best.latencyMs + c.latencyMarginMs;
      }
      case 'jitter':
        return (
          this.latencyCount.sum(now) >= 2 && this.jitter.jitter > best.jitterMs + c.jitterMarginMs
        );
      case 'loss': {
        const l = this.measuredLoss(now);
        return !Number.isNaN(l) && l > best.lossRate + c.lossMargin;
      }
    }
  }

  /**
   * Call every few hundred ms (and on path changes) with the best single path's
   * estimate. Returns the mode in force; the session's SchedContext.onlyPathId should
   * be set to `singlePathId`.
   */
  evaluate(now: number, best: SingleEstimate, appLimited: boolean): GuardMode {
    Object.assign(this.lastBest, best);
    const c = this.c;
    if (this.mode_ === 'single') {
      // Follow the best path if it changes (or if ours failed).
      if (best.pathId >= 0) this.singlePathId_ = best.pathId;
      if (now >= this.nextRetryAt_) this.enter('striping', now);
      return this.mode_;
    }
    if (best.pathId < 0) return this.mode_;
    // Judge only over a full window of striping.
    const judged = now - this.modeSince >= c.windowMs;
    if (judged && this.worse(now, best, appLimited)) {
      if (this.worseSince < 0) this.worseSince = now;
      if (now - this.worseSince >= c.sustainMs) {
        // A retry that failed within its probation doubles the next wait.
        const failedRetry = this.fallbacks > 0 && now - this.modeSince < c.probationMs;
        this.backoff = failedRetry
          ? Math.min(this.backoff * 2, c.retryMaxMs)
          : Math.min(c.retryBaseMs, c.retryMaxMs);
        this.singlePathId_ = best.pathId;
        this.nextRetryAt_ = now + this.backoff;
        this.fallbacks++;
        this.enter('single', now);
      }
    } else {
      this.worseSince = -1;
    }
    return this.mode_;
  }

  private enter(mode: GuardMode, now: number): void {
    this.mode_ = mode;
    this.modeSince = now;
    this.worseSince = -1;
    if (mode === 'striping') this.nextRetryAt_ = Infinity;
  }

  get backoffMs(): number {
    return this.backoff;
  }

  snapshot(now: number): GuardSnapshot {
    return {
      mode: this.mode_,
      singlePathId: this.singlePathId,
      fallbacks: this.fallbacks,
      backoffMs: this.backoff,
      nextRetryAt: this.nextRetryAt_,
      measured: {
        goodput: this.measuredGoodput(now),
        latencyMs: this.measuredLatency(now),
        jitterMs: this.jitter.jitter,
        lossRate: this.measuredLoss(now),
      },
      best: { ...this.lastBest },
    };
  }
}
