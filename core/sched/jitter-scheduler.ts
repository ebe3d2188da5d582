import type { ObjectiveScheduler, PathView, SchedContext } from './path-view.js';
import { PathDecision, markEligible } from './path-view.js';

export interface JitterConfig {
  /** A challenger must beat the current path by max(epsilon, fraction · current). */
  epsilonMs?: number;
  fraction?: number;
  /** ...for this long before the session moves to it. */
  holdMs?: number;
}

/**
 * Jitter: the steadiest path (lowest RFC 3550 jitter, rttvar before any jitter
 * sample), held with hysteresis so that the session does not flap between two paths
 * of similar steadiness — every move itself causes a delay step the receiver sees as
 * jitter. A challenger replaces the current path only when it is better by
 * max(ε, 25 %) continuously for `holdMs`; if the current path becomes unusable the
 * best one takes over at once. One path carries everything: spreading over paths of
 * different delay is what jitter-sensitive sessions must avoid (the combiner lets
 * other paths in only when both their jitter and their RTT are within ε).
 */
export class JitterScheduler implements ObjectiveScheduler {
  private readonly decision = new PathDecision();
  private eligible = new Uint8Array(8);
  private readonly epsilon: number;
  private readonly fraction: number;
  private readonly holdMs: number;
  /** The path the session stays on, -1 before the first pick. */
  current = -1;
  private challenger = -1;
  private challengerSince = 0;
  switches = 0;

  constructor(config: JitterConfig = {}) {
    this.epsilon = config.epsilonMs ?? 5;
    this.fraction = config.fraction ?? 0.25;
    this.holdMs = config.holdMs ?? 2000;
  }

  static metric(v: PathView): number {
    return v.jitter;
  }

  /**
   * Updates the held path from the eligible candidates and returns its index (-1 if
   * none). `eligible` has 1 for candidates that may be used; `metric`, when given, is
   * each candidate's jitter as the combiner sees it (feedback penalties included).
   */
  steadiest(
    candidates: readonly PathView[],
    eligible: Uint8Array,
    now: number,
    metric: Float64Array | null = null,
  ): number {
    let best = -1;
    let cur = -1;
    for (let i = 0; i < candidates.length; i++) {
      if (eligible[i] === 0) continue;
      const v = candidates[i]!;
      if (v.id === this.current) cur = i;
      if (best < 0 || value(candidates, metric, i) < value(candidates, metric, best)) best = i;
    }
    if (best < 0) return -1;
    if (cur < 0) {
      this.moveTo(candidates[best]!.id);
      return best;
    }
    if (best === cur) {
      this.challenger = -1;
      return cur;
    }
    const c = value(candidates, metric, cur);
    const margin = Math.max(this.epsilon, this.fraction * c);
    if (value(candidates, metric, best) < c - margin) {
      const id = candidates[best]!.id;
      if (this.challenger !== id) {
        this.challenger = id;
        this.challengerSince = now;
      } else if (now - this.challengerSince >= this.holdMs) {
        this.moveTo(id);
        return best;
      }
    } else {
      this.challenger = -1;
    }
    return cur;
  }

  private moveTo(id: number): void {
    if (this.current >= 0 && this.current !== id) this.switches++;
    this.current = id;
    this.challenger = -1;
  }

  pick(ctx: SchedContext, candidates: readonly PathView[], _bytes: number, now: number) {
    const n = candidates.length;
    if (this.eligible.length < n) this.eligible = new Uint8Array(n * 2);
    markEligible(ctx, candidates, this.eligible);
    const i = this.steadiest(candidates, this.eligible, now);
    if (i < 0) return this.decision.wait(Infinity);
    const v = candidates[i]!;
    if (!v.canSend) return this.decision.wait(v.bytesInFlight < v.cwnd ? v.sendAt : Infinity);
    return this.decision.choose(i, v.id);
  }
}

function value(candidates: readonly PathView[], metric: Float64Array | null, i: number): number {
  return metric === null ? candidates[i]!.jitter : metric[i]!;
}
