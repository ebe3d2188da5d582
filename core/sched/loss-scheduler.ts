import type { ObjectiveScheduler, PathView, SchedContext } from './path-view.js';
import {
  MAX_COPIES,
  PathDecision,
  expectedArrivalMs,
  isReliable,
  markEligible,
} from './path-view.js';

export interface LossConfig {
  /** Loss rates closer than this are equal (DESIGN §3 tolerance; default 0.5 %). */
  epsilon?: number;
  /** Unreliable sessions: duplicate until the residual loss estimate is below this. */
  targetLoss?: number;
  /** ...with at most this many copies in all (1..MAX_COPIES). */
  maxCopies?: number;
}

/** Loss rate assumed for a copy's path when it measured none: losses are never impossible. */
const LOSS_FLOOR = 1e-4;
/**
 * Packets a path's loss rate must rest on before it may stop duplication. Before that
 * (a new path, a session's first packets) the path counts as lossy: lab scenario e
 * lost its first ~100 messages' copies waiting for the first loss to be seen.
 */
export const LOSS_EVIDENCE_PACKETS = 200;

/** A session with more than this many packets waiting does not wait for a copy's path. */
export const COPY_WAIT_BACKLOG_PACKETS = 32;

/** The loss rate duplication plans with: unknown counts as certain loss. */
function plannedLoss(v: PathView): number {
  return v.lossSamples < LOSS_EVIDENCE_PACKETS ? 1 : Math.max(v.lossRate, LOSS_FLOOR);
}

/** The residual loss duplication plans with: the product over every copy placed so far. */
function plannedResidual(decision: PathDecision, candidates: readonly PathView[]): number {
  let r = plannedLoss(candidates[decision.index]!);
  for (let k = 0; k < decision.duplicateCount; k++)
    r *= plannedLoss(candidates[decision.duplicates[k]!]!);
  for (let k = 0; k < decision.deferredCount; k++)
    r *= plannedLoss(candidates[decision.deferred[k]!]!);
  return r;
}

/**
 * Loss (paper §III-A: "minimizing losses only applies when the session layer is
 * requested to provide unreliable delivery"; DESIGN §3):
 * - unreliable sessions: send on the lowest-loss path and duplicate onto the next
 *   lowest-loss paths that can send now, as many copies as needed for the residual
 *   loss estimate Π pᵢ (independent losses) to fall below `targetLoss`, at most
 *   `maxCopies` in all; a path whose loss rate rests on fewer than
 *   LOSS_EVIDENCE_PACKETS packets counts as pᵢ = 1 (not yet known to be clean); when a
 *   copy is still due but its path's window or pacer is shut this instant, the packet
 *   waits for it (`copyRetryAt`) instead of going alone;
 * - reliable sessions: avoid lossy paths — among the paths within ε of the lowest
 *   loss, the one with the earliest expected arrival, a loss costing its expected
 *   retransmission (path-view.ts `expectedArrivalMs`).
 */
export class LossScheduler implements ObjectiveScheduler {
  private readonly decision = new PathDecision();
  private eligible = new Uint8Array(8);
  readonly epsilon: number;
  readonly targetLoss: number;
  readonly maxCopies: number;

  constructor(config: LossConfig = {}) {
    this.epsilon = config.epsilon ?? 0.005;
    this.targetLoss = config.targetLoss ?? 0.001;
    this.maxCopies = Math.max(1, Math.min(MAX_COPIES, Math.floor(config.maxCopies ?? 2)));
  }

  pick(ctx: SchedContext, candidates: readonly PathView[], bytes: number, now: number) {
    const n = candidates.length;
    if (this.eligible.length < n) this.eligible = new Uint8Array(n * 2);
    const eligible = this.eligible;
    if (markEligible(ctx, candidates, eligible) === 0) return this.decision.wait(Infinity);
    const reliable = isReliable(ctx.semantics);
    let minLoss = Infinity;
    for (let i = 0; i < n; i++) {
      if (eligible[i] === 1 && candidates[i]!.lossRate < minLoss) minLoss = candidates[i]!.lossRate;
    }
    // Lowest loss within ε; among those the earliest expected arrival.
    let best = -1;
    let bestAt = Infinity;
    for (let i = 0; i < n; i++) {
      if (eligible[i] === 0) continue;
      const v = candidates[i]!;
      if (v.lossRate > minLoss + this.epsilon) continue;
      const t = expectedArrivalMs(v, bytes, now, reliable);
      if (t < bestAt) {
        best = i;
        bestAt = t;
      }
    }
    const v = candidates[best]!;
    if (!v.canSend) return this.decision.wait(v.bytesInFlight < v.cwnd ? v.sendAt : Infinity);
    this.decision.choose(best, v.id);
    if (!reliable) {
      this.addDuplicates(this.decision, candidates, eligible, this.maxCopies);
      const retryAt = this.copyRetryAt(
        ctx,
        this.decision,
        candidates,
        eligible,
        this.maxCopies,
        bytes,
        now,
      );
      if (retryAt >= 0) return this.decision.wait(retryAt);
      this.addDeferred(this.decision, candidates, eligible, this.maxCopies);
    }
    return this.decision;
  }

  /**
   * After `addDuplicates` and a decision not to wait (a backlogged session): copies
   * still due go on the lowest-loss paths whose window or pacer is shut, to be sent
   * there when it opens, instead of the message going alone (lab scenario e: 2.7% of
   * messages went uncopied that way, and they made most of the residual loss).
   */
  addDeferred(
    decision: PathDecision,
    candidates: readonly PathView[],
    eligible: Uint8Array,
    maxCopies: number,
  ): void {
    this.placeCopies(decision, candidates, eligible, maxCopies, false);
  }

  /**
   * Adds copies on the lowest-loss eligible paths that can send now (`open`; into
   * `duplicates`) or cannot (into `deferred`) until the residual loss of all copies
   * placed so far is below the target or `maxCopies` is reached. No allocation: a
   * selection by repeated scans (a handful of paths).
   */
  private placeCopies(
    decision: PathDecision,
    candidates: readonly PathView[],
    eligible: Uint8Array,
    maxCopies: number,
    open: boolean,
  ): void {
    if (decision.index < 0) return;
    let residual = plannedResidual(decision, candidates);
    let copies = 1 + decision.duplicateCount + decision.deferredCount;
    const limit = Math.min(maxCopies, MAX_COPIES);
    while (residual > this.targetLoss && copies < limit) {
      let next = -1;
      for (let i = 0; i < candidates.length; i++) {
        if (eligible[i] === 0 || i === decision.index || candidates[i]!.canSend !== open) continue;
        if (this.isDuplicate(decision, i) || this.isDeferred(decision, i)) continue;
        if (next < 0 || candidates[i]!.lossRate < candidates[next]!.lossRate) next = i;
      }
      if (next < 0) break;
      if (open) decision.duplicates[decision.duplicateCount++] = next;
      else decision.deferred[decision.deferredCount++] = next;
      residual *= plannedLoss(candidates[next]!);
      copies++;
    }
  }

  private isDeferred(decision: PathDecision, i: number): boolean {
    for (let k = 0; k < decision.deferredCount; k++) if (decision.deferred[k] === i) return true;
    return false;
  }

  /**
   * Adds copies to `decision` on the lowest-loss eligible paths that can send now until
   * the residual loss is below the target or `maxCopies` is reached. No allocation:
   * a selection by repeated scans (a handful of paths).
   */
  addDuplicates(
    decision: PathDecision,
    candidates: readonly PathView[],
    eligible: Uint8Array,
    maxCopies: number,
  ): void {
    this.placeCopies(decision, candidates, eligible, maxCopies, true);
  }

  /**
   * After `addDuplicates`: when the copies still fall short of the target only because
   * a copy path's window or pacer is shut at this instant, the time to ask again
   * (Infinity: when an ACK opens the window) — the packet then waits so that it and its
   * copy go together. -1 when nothing is worth waiting for. Sending it alone instead
   * left ~10% of the messages uncopied on app-limited lossy paths (lab scenario e: the
   * copy path's congestion window hovers at the session's in-flight data), each lost
   * at the single path's rate, which dominated the residual loss. Only while the
   * session is app-limited (at most COPY_WAIT_BACKLOG_PACKETS packets waiting): there
   * the wait costs a moment, not rate; a backlogged session would be held to its
   * slowest path's rate, so it sends now and owes the copy to the shut path
   * (`addDeferred`).
   */
  copyRetryAt(
    ctx: SchedContext,
    decision: PathDecision,
    candidates: readonly PathView[],
    eligible: Uint8Array,
    maxCopies: number,
    bytes: number,
    now: number,
  ): number {
    if (decision.index < 0) return -1;
    if (ctx.backlogBytes > COPY_WAIT_BACKLOG_PACKETS * bytes) return -1;
    if (decision.duplicateCount + 1 >= Math.min(maxCopies, MAX_COPIES)) return -1;
    if (plannedResidual(decision, candidates) <= this.targetLoss) return -1;
    let at = -1;
    for (let i = 0; i < candidates.length; i++) {
      const v = candidates[i]!;
      if (eligible[i] === 0 || i === decision.index || v.canSend) continue;
      if (this.isDuplicate(decision, i)) continue;
      const open = v.bytesInFlight < v.cwnd;
      const t = open ? v.sendAt : Infinity;
      // A pacer that says "now" is no reason to wait (the view is not that fresh).
      if (open && t <= now) continue;
      if (at < 0 || t < at) at = t;
    }
    return at;
  }

  private isDuplicate(decision: PathDecision, i: number): boolean {
    for (let k = 0; k < decision.duplicateCount; k++) if (decision.duplicates[k] === i) return true;
    return false;
  }

  /** Residual loss estimate of a decision (product of the copies' loss rates). */
  static residual(decision: PathDecision, candidates: readonly PathView[]): number {
    if (decision.index < 0) return 1;
    let r = Math.max(candidates[decision.index]!.lossRate, LOSS_FLOOR);
    for (let k = 0; k < decision.duplicateCount; k++) {
      r *= Math.max(candidates[decision.duplicates[k]!]!.lossRate, LOSS_FLOOR);
    }
    return r;
  }
}
