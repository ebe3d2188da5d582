import { BraidError } from '../util/errors.js';
import type { ObjectiveScheduler, PathView, SchedContext } from './path-view.js';
import {
  PathDecision,
  deliveryBehindFlightMs,
  effectiveRate,
  isReliable,
  markEligible,
  waitMs,
} from './path-view.js';

/** Bytes handed out per round to the fastest path; slower paths get a proportional share. */
const QUANTUM = 64 * 1024;
/** ECF's hysteresis β (Lim et al. 2017 §3): once waiting, keep waiting unless clearly worse. */
const ECF_BETA = 0.25;
/** Credit kept across rounds is capped so that a path idle for long does not burst. */
const MAX_CREDIT = 2 * QUANTUM;
/** ThroughputScheduler.ecf's answer for "wait for the fastest path". */
const ECF_WAIT = -1;
/** Path ids the credit table takes (it grows up to this). */
const MAX_PATH_ID = 1 << 20;

/**
 * Throughput: deficit round robin with quanta proportional to each path's rate (paper
 * §III-B: "a modified deficit-round-robin algorithm where quanta are a function of the
 * achievable throughput on each path"), and the ECF rule (Lim et al., "ECF: An MPTCP
 * Path Scheduler to Manage Heterogeneous Paths", CoNEXT 2017; BLEST, Ferlin et al.
 * 2016, has the same idea): a packet is not put on a slower path when the fastest path
 * would deliver the whole backlog before that packet arrives — it waits for the fast
 * path instead. With a large backlog every path carries its share.
 *
 * `pickWeighted` takes a gain per candidate (0..1) from the combiner: a path's quantum
 * is its rate times its gain, and a gain of 0 excludes it.
 */
export class ThroughputScheduler implements ObjectiveScheduler {
  private readonly decision = new PathDecision();
  /**
   * DRR credit by path id. A typed array, not a Map: a Map boxes each double it
   * stores, an allocation per packet. Path ids are small integers counted up per
   * association (association.ts nextPathId).
   */
  private credits = new Float64Array(16);
  private eligible = new Uint8Array(8);
  /** Whether the last decision was an ECF wait (hysteresis). */
  private waiting = false;
  /** Counters for tests and the dashboard. */
  ecfWaits = 0;
  /** Packets DRR gave a slower path that ECF moved to the fastest one, which had room. */
  ecfRedirects = 0;
  rounds = 0;

  pick(ctx: SchedContext, candidates: readonly PathView[], bytes: number, now: number) {
    return this.pickWeighted(ctx, candidates, null, bytes, now);
  }

  /** DRR credit of a path (for tests and the dashboard). */
  credit(pathId: number): number {
    return pathId < this.credits.length ? this.credits[pathId]! : 0;
  }

  /** Forgets a path that left the association. */
  remove(pathId: number): void {
    if (pathId < this.credits.length) this.credits[pathId] = 0;
  }

  private ensureId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id > MAX_PATH_ID) {
      throw new BraidError('BRAID_ERR_INTERNAL', 'path id out of the scheduler range', {
        path: id,
      });
    }
    if (id >= this.credits.length) {
      const grown = new Float64Array(Math.max(id + 1, this.credits.length * 2));
      grown.set(this.credits);
      this.credits = grown;
    }
  }

  pickWeighted(
    ctx: SchedContext,
    candidates: readonly PathView[],
    gains: Float64Array | null,
    bytes: number,
    now: number,
    held: Uint8Array | null = null,
  ): PathDecision {
    const n = candidates.length;
    if (this.eligible.length < n) this.eligible = new Uint8Array(n * 2);
    const eligible = this.eligible;
    markEligible(ctx, candidates, eligible);
    const reliable = isReliable(ctx.semantics);
    let maxRate = 0;
    let best = -1;
    let bestCredit = 0;
    let sendable = 0;
    let nextRelease = Infinity;
    // Eligible paths that cannot send this instant (pacer or window shut), and whether
    // one of them has credit left: such a path is still backlogged, its round not over.
    let blocked = 0;
    let blockedCredit = false;
    // Every sendable path is held to its share (held, from the app's feedback).
    let allSendableHeld = held !== null;
    for (let i = 0; i < n; i++) {
      if (eligible[i] === 0) continue;
      const g = gains === null ? 1 : gains[i]!;
      if (!(g > 0)) {
        eligible[i] = 0;
        continue;
      }
      const v = candidates[i]!;
      const rate = effectiveRate(v, reliable) * g;
      if (rate > maxRate) maxRate = rate;
      if (!v.canSend) {
        blocked++;
        if (this.credit(v.id) > 0) blockedCredit = true;
        if (v.bytesInFlight < v.cwnd && v.sendAt < nextRelease) nextRelease = v.sendAt;
        continue;
      }
      sendable++;
      if (held !== null && held[i] !== 1) allSendableHeld = false;
      this.ensureId(v.id);
      let c = this.credits[v.id]!;
      // Credit banked before the path's gain fell (feedback, a worse estimate) is cut to
      // what the new gain would have granted, so the path does not keep its old share.
      if (g < 1 && c > MAX_CREDIT * g) {
        c = MAX_CREDIT * g;
        this.credits[v.id] = c;
      }
      if (c > 0 && (best < 0 || c > bestCredit)) {
        best = i;
        bestCredit = c;
      }
    }
    if (sendable === 0) return this.decision.wait(nextRelease);
    // Held back: every sendable path is held (the app's feedback against it) while some
    // other eligible path is only shut this instant. Such a path gets its share, g x its
    // rate's, of what the others send, not the whole of every gap in theirs: it does not
    // start a new round while a shut path still has credit, a round it starts gives the
    // shut paths their quanta too, and it waits (for the pacer release or the next ACK)
    // while its credit is still spent. Else each pacer gap (a fraction of a millisecond)
    // or full window would be a round of its own, and a path at gain 0.05 would take a
    // quantum per packet of the other (the feedback test took 31-151 KB where 1 KB was
    // its share). Other paths, a gain from the combiner's stages included, start rounds
    // as before: work-conserving, so that the pacers and windows, not the quanta, set
    // the split. A strict share there starved a path whose slow start overshot: its loss
    // rate put its gain near 0 under the default loss-first policy, it then sent too
    // little for the rate to fall, and lab a ran at one link's speed.
    const heldBack = allSendableHeld && blocked > 0;
    if (best < 0) {
      if (heldBack && blockedCredit) return this.decision.wait(nextRelease);
      // Every sendable path spent its quantum: a new round.
      this.rounds++;
      for (let i = 0; i < n; i++) {
        if (eligible[i] === 0) continue;
        const v = candidates[i]!;
        if (!v.canSend && !heldBack) continue;
        const g = gains === null ? 1 : gains[i]!;
        const quantum = (QUANTUM * effectiveRate(v, reliable) * g) / maxRate;
        this.ensureId(v.id);
        const c = Math.min(this.credits[v.id]! + quantum, MAX_CREDIT);
        this.credits[v.id] = c;
        if (!v.canSend) continue;
        if (best < 0 || c > bestCredit) {
          best = i;
          bestCredit = c;
        }
      }
      if (heldBack && bestCredit <= 0) return this.decision.wait(nextRelease);
    }
    const ecf = this.ecf(ctx, candidates, eligible, held, best, bytes, now, reliable);
    if (ecf === ECF_WAIT) {
      this.waiting = true;
      this.ecfWaits++;
      return this.decision.wait(this.ecfRetryAt);
    }
    this.waiting = false;
    // The packet is charged to the path DRR gave it to, also when ECF moves it: the
    // fastest path has room and delivers the whole backlog before this packet would
    // arrive on the slower one (the tail of a transfer). Charged to the fastest path
    // instead, the slower one kept its credit, so the round never ended while ECF held
    // it off: no path got a new quantum, a third path whose credit was spent got
    // nothing (a loopback TCP path carried 2-5 % of 200 MB in 3 of 40 transfers, ECF
    // moving 13,000 packets), and the fastest ran up a debt of megabytes.
    const charged = candidates[best]!;
    this.credits[charged.id] = this.credits[charged.id]! - bytes;
    if (ecf !== best) {
      this.ecfRedirects++;
      best = ecf;
    }
    return this.decision.choose(best, candidates[best]!.id);
  }

  /** When an ECF wait ends (set with ECF_WAIT). */
  private ecfRetryAt = 0;

  /**
   * ECF: which path the packet DRR gave to `s` goes on — `s`, or the fastest path `f`
   * when that has room now — or ECF_WAIT (retry at ecfRetryAt) to wait for `f`.
   * Fastest = lowest RTT among eligible paths not held (unless s is). With
   * k = the session's backlog, the fast path needs about wait_f + k/rate_f + srtt_f/2
   * (more behind a standing queue) to deliver all of it; the packet on the slow path
   * arrives after bytes/rate_s + srtt_s/2, or later when the slow path's bytes in
   * flight exceed what its min RTT holds (they queue ahead of it). When the former is
   * sooner (by the β margin once waiting), the slow path would only add reordering and
   * a late last byte. Lim et al. only ever weigh a slower path when the fastest has no
   * room; under DRR the slower path can hold the credit while the fastest has room, so
   * the same test moves such a packet to the fastest path.
   */
  private ecf(
    ctx: SchedContext,
    candidates: readonly PathView[],
    eligible: Uint8Array,
    held: Uint8Array | null,
    s: number,
    bytes: number,
    now: number,
    reliable: boolean,
  ): number {
    // ECF does not move a packet onto a path the app's feedback holds back.
    const skipHeld = held !== null && held[s] !== 1;
    let f = -1;
    for (let i = 0; i < candidates.length; i++) {
      if (eligible[i] === 0) continue;
      if (skipHeld && held[i] === 1) continue;
      if (f < 0 || candidates[i]!.srtt < candidates[f]!.srtt) f = i;
    }
    if (f < 0 || f === s) return s;
    const fast = candidates[f]!;
    const slow = candidates[s]!;
    const k = Math.max(ctx.backlogBytes, bytes);
    const wait = waitMs(fast, bytes, now);
    const fastDone = wait + deliveryBehindFlightMs(fast, k, reliable);
    // The packet queues behind what the slow path already carries: of its bytes in
    // flight, about rate x minRtt are on the wire or acknowledged on the way back; the
    // rest waits at its bottleneck. A slow path whose window outgrew its rate (slow
    // start) would otherwise look a whole queue faster than it is, and the last bytes
    // of a transfer would trail on it (1 MB completion behind the best single path).
    const slowArrives = deliveryBehindFlightMs(slow, bytes, reliable);
    const margin = this.waiting ? 1 + ECF_BETA : 1;
    if (!(fastDone < slowArrives * margin)) return s;
    if (fast.canSend) return f;
    this.ecfRetryAt = now + Math.max(wait, 0.001);
    return ECF_WAIT;
  }
}
