/**
 * Coupled congestion control across the UDP paths of one association (DESIGN §3
 * "Fairness", paper §III-A): the Linked Increases Algorithm, LIA (RFC 6356).
 *
 * Why LIA, and not OLIA or BALIA:
 * - TCP-friendliness at a shared bottleneck: LIA's increase on a path is
 *   min(α·acked·mss/Σcwnd, acked·mss/cwndᵢ) — never more than that path's own Reno
 *   increase, and summed over the paths at most one Reno flow's per RTT (RFC 6356 §3,
 *   goal 2 "do no harm"). That is exactly the property DESIGN §3 asks for, and what
 *   test/unit/paths/coupled-congestion.test.ts checks. OLIA and BALIA meet it too.
 * - Non-flappiness: LIA's α is a smooth function of the windows and RTTs. OLIA splits
 *   paths into "best" and "largest window" sets and moves window between them in steps
 *   that change as the sets change; it oscillates, and was shown unresponsive — a path
 *   squeezed to its minimum window may not grow back after it improves (Peng, Walid,
 *   Hwang, Low, "Multipath TCP: analysis, design and implementation", IEEE/ACM ToN
 *   2016, the BALIA paper). Laptop uplinks change all the time, so responsiveness to
 *   an improving path matters more to Braid than OLIA's Pareto-optimality.
 * - Fit with our path controllers: LIA changes only the congestion-avoidance increase
 *   and needs only each path's cwnd and srtt, which PathRecovery has. Slow start stays
 *   the path's own, and the loss response is RFC 6356's halving on every linked path
 *   (path-recovery.ts `linked`). BALIA also alters the decrease (by a factor that
 *   depends on the other paths), which would replace our tested loss response.
 * - Its known cost — LIA shifts traffic off congested paths less decisively than OLIA
 *   (Khalili et al., "MPTCP is not Pareto-optimal", CoNEXT 2012) — is paid back by the
 *   session schedulers, which steer packets to the better paths by measured loss, rate
 *   and delay (core/sched).
 *
 * CUBIC paths keep their Reno-friendly factor 3(1 − β)/(1 + β) ≈ 0.53 (RFC 9438 §4.3)
 * on the linked increase while they halve like NewReno: the group then takes about
 * 0.73 of one Reno flow, a margin that the lab's shared bottleneck showed is needed
 * against the kernel's unpaced TCP (path-recovery.ts `linked` has the figures).
 *
 * Paths under BBR (config 'bbr', or 'auto' once a path's losses proved random) stay in
 * the group but are skipped: BBR has no loss-driven increase to link, and it paces at
 * the rate it measures. 'auto' keeps paths that share a queued bottleneck on CUBIC and
 * couples them from their first queue overflow on, so coupling holds where fairness is
 * at stake (core/session/config.ts).
 *
 * Which paths are linked: only those found to share a bottleneck (shared-bottleneck.ts,
 * RFC 8382's idea; paths start linked, unlink once their queues are seen to part, and
 * show the link when one path's cut drains the other's queue too: congestionEvent).
 * RFC 6356 links every subflow, which costs disjoint paths the halving for nothing: in
 * the lab's scenario a (Wi-Fi and cable, disjoint) Braid made 46.37 and 46.72 Mbit/s
 * with detection against kernel MPTCP's 46.95 and 46.79 in the same runs, where with
 * every path linked its steady seconds sat about 1 Mbit/s lower (45.39 vs 47.02 in the
 * last full lab). `detectSharedBottleneck: false` links every coupled path, as RFC 6356
 * does.
 *
 * Opt-out: an association that does not create a group leaves each path uncoupled.
 */

import { SharedBottleneckDetector } from './shared-bottleneck.js';

/** What the group reads from each member (PathRecovery implements it). */
export interface CoupledPath {
  readonly cwnd: number;
  readonly srtt: number;
  readonly maxDatagramSize: number;
  /**
   * False while the path takes no part in the coupling: under BBR (config 'bbr', or
   * 'auto' once its losses proved random), which paces at the rate it measures, or
   * under 'auto' before any loss came from a queue (path-recovery.ts queueLossSeen).
   * Its window then neither weighs on α nor takes the linked increase. Undefined
   * counts as true.
   */
  readonly coupled?: boolean;
  coupling: CongestionCoupling | undefined;
}

/** The hook PathRecovery calls in congestion avoidance (path-recovery.ts). */
export interface CongestionCoupling {
  /** Bytes to add to `member.cwnd` for `ackedBytes` newly acknowledged in congestion avoidance. */
  increase(member: CoupledPath, ackedBytes: number): number;
  /**
   * Members that take part now (`coupled` not false) and share a bottleneck with
   * `member`, itself included. With one, there is nothing to link: that path uses its
   * own controller's increase and decrease, as one TCP flow would.
   */
  linkedCount(member: CoupledPath): number;
  /**
   * Whether `member` was measured to share a bottleneck with another member that takes
   * part now (always true with detection off: RFC 6356 links every path). Pairs start
   * linked before their first verdict; until a link is shown, a linked path takes
   * LIA's increase but CUBIC's own decrease, and 'auto' may still move it to BBR
   * (path-recovery.ts onCongestionEvent).
   */
  linkShown(member: CoupledPath): boolean;
  /**
   * One RTT sample's queueing delay on `member` (sample − min RTT, ms), taken in
   * congestion avoidance: what shared-bottleneck detection judges by.
   */
  observeQueueDelay(member: CoupledPath, queueDelayMs: number, now: number): void;
  /**
   * `member` cut its window for a congestion event at `now` (a loss-based cut, not a
   * move to BBR): shared-bottleneck detection watches whether the other paths' queues
   * drain with it.
   */
  congestionEvent(member: CoupledPath, now: number): void;
}

export interface CoupledGroupOptions {
  /**
   * Link only the paths found to share a bottleneck (shared-bottleneck.ts), the default.
   * false links every coupled path, as RFC 6356 does for an MPTCP connection's subflows.
   */
  detectSharedBottleneck?: boolean;
}

export class CoupledGroup implements CongestionCoupling {
  private readonly members: CoupledPath[] = [];
  /** Undefined when every coupled member is linked (detectSharedBottleneck false). */
  private readonly detector: SharedBottleneckDetector<CoupledPath> | undefined;

  constructor(options: CoupledGroupOptions = {}) {
    this.detector =
      options.detectSharedBottleneck === false ? undefined : new SharedBottleneckDetector();
  }

  get size(): number {
    return this.members.length;
  }

  linkedCount(member: CoupledPath): number {
    let n = 0;
    for (let i = 0; i < this.members.length; i++) if (this.links(member, this.members[i]!)) n++;
    return n;
  }

  linkShown(member: CoupledPath): boolean {
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[i]!;
      if (m === member || m.coupled === false) continue;
      if (this.detector === undefined || this.detector.sharedShown(member, m)) return true;
    }
    return false;
  }

  observeQueueDelay(member: CoupledPath, queueDelayMs: number, now: number): void {
    this.detector?.observe(member, queueDelayMs, now);
  }

  congestionEvent(member: CoupledPath, now: number): void {
    this.detector?.congestionEvent(member, now, member.srtt);
  }

  /** Couples a path (UDP paths only: TCP paths have the kernel's congestion control). */
  add(member: CoupledPath): void {
    if (this.members.includes(member)) return;
    this.members.push(member);
    this.detector?.add(member);
    member.coupling = this;
  }

  /** Uncouples a path that failed or closed, so it no longer weighs on α. */
  remove(member: CoupledPath): void {
    const i = this.members.indexOf(member);
    if (i >= 0) this.members.splice(i, 1);
    this.detector?.remove(member);
    if (member.coupling === this) member.coupling = undefined;
  }

  /** Whether two members were found to share a bottleneck (always, detection off). */
  sharesBottleneck(a: CoupledPath, b: CoupledPath): boolean {
    return this.detector === undefined || this.detector.sharesWith(a, b);
  }

  /** Whether `other` weighs on `member`'s linked increase: coupled, at the same bottleneck. */
  private links(member: CoupledPath, other: CoupledPath): boolean {
    return other.coupled !== false && this.sharesBottleneck(member, other);
  }

  /**
   * RFC 6356 §3 over the members linked with `member`: α = cwnd_total · maxᵢ(cwndᵢ/rttᵢ²)
   * / (Σᵢ cwndᵢ/rttᵢ)², recomputed per ACK (a handful of paths; no allocation).
   */
  alpha(member: CoupledPath): number {
    let total = 0;
    let best = 0;
    let sum = 0;
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[i]!;
      if (!this.links(member, m)) continue;
      const rtt = Math.max(m.srtt, 0.1);
      total += m.cwnd;
      const x = m.cwnd / (rtt * rtt);
      if (x > best) best = x;
      sum += m.cwnd / rtt;
    }
    return sum === 0 ? 1 : (total * best) / (sum * sum);
  }

  increase(member: CoupledPath, ackedBytes: number): number {
    let total = 0;
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[i]!;
      if (this.links(member, m)) total += m.cwnd;
    }
    if (total <= 0 || member.cwnd <= 0) return 0;
    const mss = member.maxDatagramSize;
    const coupled = (this.alpha(member) * ackedBytes * mss) / total;
    const own = (ackedBytes * mss) / member.cwnd;
    return Math.min(coupled, own);
  }
}
