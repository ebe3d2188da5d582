import type { ObjectiveScheduler, PathView, SchedContext } from './path-view.js';
import {
  PathDecision,
  chooseOrWait,
  expectedArrivalMs,
  isReliable,
  markEligible,
} from './path-view.js';

/**
 * Latency: earliest expected arrival (DESIGN §3). Each packet goes where it is
 * expected to arrive first — wait for the path + (bytes queued ahead + these bytes) /
 * rate + srtt/2, plus the expected retransmission cost on reliable sessions
 * (path-view.ts `expectedArrivalMs`). When the best path cannot take the packet yet
 * (pacer or window) and still wins, the decision is to wait for it rather than to
 * send on a later-arriving path.
 */
export class LatencyScheduler implements ObjectiveScheduler {
  private readonly decision = new PathDecision();
  private eligible = new Uint8Array(8);

  pick(ctx: SchedContext, candidates: readonly PathView[], bytes: number, now: number) {
    const n = candidates.length;
    if (this.eligible.length < n) this.eligible = new Uint8Array(n * 2);
    markEligible(ctx, candidates, this.eligible);
    const reliable = isReliable(ctx.semantics);
    let best = -1;
    let bestAt = Infinity;
    for (let i = 0; i < n; i++) {
      if (this.eligible[i] === 0) continue;
      const t = expectedArrivalMs(candidates[i]!, bytes, now, reliable);
      if (t < bestAt) {
        best = i;
        bestAt = t;
      }
    }
    return chooseOrWait(this.decision, candidates, best);
  }
}
