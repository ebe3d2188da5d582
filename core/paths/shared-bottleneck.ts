/**
 * Shared-bottleneck detection for the paths of one association, in the manner of
 * RFC 8382 (passive detection from one-way-delay statistics), cut down to the one
 * question coupled congestion control needs: do two paths queue at the same place?
 *
 * Why: LIA's linked increase and halving (coupled-congestion.ts, path-recovery.ts
 * `linked`) are what keep an association to one TCP share at a bottleneck its paths
 * share (lab scenario g), and pure cost where the paths' bottlenecks are disjoint (the
 * usual laptop: Wi-Fi and a phone, each with its own queue). RFC 8382 §1 and RFC 8699
 * couple only flows found to share a bottleneck; this does the same for paths.
 *
 * The signal: a queue that two paths share adds the same delay to both at the same
 * moment, so their queueing delays (RTT sample − the path's minimum RTT) move together
 * and stay level with each other. Disjoint queues fill and drain on their own, so the
 * two series part. Each path's samples are reduced to the smallest queueing delay per
 * BIN_MS bin, which strips most of the host's scheduling noise (it only ever adds
 * delay); over each WINDOW_MS window, for every pair of paths with enough common bins:
 * - lvl = mean of (q₁ + q₂)/2, how much queue there is to judge by;
 * - r = mean |q₁ − q₂| / lvl, how far apart the two queues sit;
 * - ρ = Pearson correlation of q₁ and q₂, whether they move together.
 * A window looks shared when r < SHARED_MAX_SPREAD and ρ ≥ SHARED_MIN_CORRELATION, and
 * disjoint when r > DISJOINT_MIN_SPREAD or ρ < DISJOINT_MAX_CORRELATION; a window with
 * less than MIN_QUEUE_MS of queue says nothing (two idle queues look alike).
 *
 * The thresholds come from the lab's RTT samples (per 1 s window, traced at b3c6ded):
 * at g's shared bottleneck, with and without a competing TCP flow, r was 0.04–0.35 with
 * ρ 0.67–0.98 once both paths had left slow start; on the disjoint paths of a, b, c and f
 * r was 0.28–1.9, and the windows with r < 0.35 had ρ ≤ 0.75 (the host's scheduling
 * delay, common to every path, keeps ρ above 0 on disjoint paths too). Live, a few
 * disjoint windows still look shared: 1 of 9 in one run of a (r 0.18, ρ 0.85), 2 of 72
 * over two runs each of a and c. So a pair's score moves one step per verdict within
 * ±SCORE_LIMIT: it links at +SCORE_LIMIT and unlinks at UNLINK_SCORE, so one odd window
 * neither relinks an unlinked pair nor unlinks a pair that has shown shared windows (no
 * disjoint pair relinked in those runs).
 *
 * Paths start linked, as RFC 6356 links every subflow, and a pair unlinks at its first
 * net disjoint window: where fairness is at stake, coupling holds from the start. Until
 * a pair's first shared window shows the link (sharedShown), its paths take LIA's
 * increase but keep CUBIC's own decrease: on the lab's disjoint pair (a) the linked
 * halving in the second before the first verdict cut Wi-Fi's window below its BDP for
 * most of that second (interleaved quick runs: 46.27 against 45.88 Mbit/s mean), and
 * 8 fairness rounds at g gave a median of 1.16 × the competing TCP flow. Started
 * unlinked (as the kernel's MPTCP, which never couples), the pair at g was linked only
 * from the 2nd window, and 4 rounds of `npm run bench -- lab --fairness-only` at c5995dc
 * gave 1.30, 1.52, 1.49 and 1.50 × the competing TCP flow. Samples from slow start are
 * not fed: two ramps that overshoot at different times look disjoint even where the
 * queue is shared.
 */

/** Width of the bins whose smallest queueing delay stands for the path, ms. */
export const BIN_MS = 50;
/** Length of one judged window, ms. */
export const WINDOW_MS = 1000;
/** A pair needs samples in this share of a window's bins, both paths, to be judged. */
export const MIN_COMMON_BINS = 0.6;
/** Below this mean queueing delay a window shows no queue to compare, ms. */
export const MIN_QUEUE_MS = 3;
export const SHARED_MAX_SPREAD = 0.35;
export const SHARED_MIN_CORRELATION = 0.75;
export const DISJOINT_MIN_SPREAD = 0.6;
export const DISJOINT_MAX_CORRELATION = 0.3;
/** An unlinked pair links again when its score reaches this; the score stays within ±this. */
export const SCORE_LIMIT = 2;
/** A linked pair unlinks when its score falls to this. */
export const UNLINK_SCORE = -1;

export type WindowVerdict = 'shared' | 'disjoint' | 'unknown';

/** One pair's figures over one window (what a verdict rests on). */
export interface PairWindow {
  readonly commonBins: number;
  readonly level: number;
  readonly spread: number;
  readonly correlation: number;
}

/** A window's verdict from its figures (undefined figures: too few common bins). */
export function judgeWindow(w: PairWindow | undefined): WindowVerdict {
  if (w === undefined || w.level < MIN_QUEUE_MS) return 'unknown';
  if (w.spread < SHARED_MAX_SPREAD && w.correlation >= SHARED_MIN_CORRELATION) return 'shared';
  if (w.spread > DISJOINT_MIN_SPREAD || w.correlation < DISJOINT_MAX_CORRELATION) return 'disjoint';
  return 'unknown';
}

/** The figures of one window from two paths' per-bin queueing delays (Infinity: no sample). */
export function pairWindow(x: Float64Array, y: Float64Array): PairWindow | undefined {
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  let spread = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i]!;
    const b = y[i]!;
    if (a === Infinity || b === Infinity) continue;
    n++;
    sx += a;
    sy += b;
    sxx += a * a;
    syy += b * b;
    sxy += a * b;
    spread += Math.abs(a - b);
  }
  if (n < Math.ceil(MIN_COMMON_BINS * x.length) || n < 3) return undefined;
  const mx = sx / n;
  const my = sy / n;
  // Sums of squares about the means (tens of values of tens of ms: no cancellation).
  const vx = sxx - n * mx * mx;
  const vy = syy - n * my * my;
  const cov = sxy - n * mx * my;
  const level = (mx + my) / 2;
  return {
    commonBins: n,
    level,
    spread: level > 0 ? spread / n / level : Infinity,
    correlation: vx > 1e-9 && vy > 1e-9 ? cov / Math.sqrt(vx * vy) : 0,
  };
}

interface Pair<M> {
  readonly a: M;
  readonly b: M;
  score: number;
  linked: boolean;
  last: WindowVerdict;
}

export class SharedBottleneckDetector<M extends object> {
  private readonly bins = Math.round(WINDOW_MS / BIN_MS);
  private readonly series = new Map<M, Float64Array>();
  private pairs: Pair<M>[] = [];
  private windowStart: number | undefined;
  /** Member → index of its set of paths that share a bottleneck (linked pairs, transitively). */
  private readonly clusters = new Map<M, number>();
  /** Windows judged so far (diagnostics and tests). */
  windowsJudged = 0;

  add(member: M): void {
    if (this.series.has(member)) return;
    for (const other of this.series.keys()) {
      this.pairs.push({ a: other, b: member, score: 0, linked: true, last: 'unknown' });
    }
    this.series.set(member, new Float64Array(this.bins).fill(Infinity));
    this.recluster();
  }

  remove(member: M): void {
    if (!this.series.delete(member)) return;
    this.pairs = this.pairs.filter((p) => p.a !== member && p.b !== member);
    this.recluster();
  }

  /**
   * One RTT sample's queueing delay on `member` (the sample less the path's minimum RTT,
   * ms) at `now`. Closes the window first when `now` is past it.
   */
  observe(member: M, queueDelayMs: number, now: number): void {
    const series = this.series.get(member);
    if (series === undefined || !Number.isFinite(queueDelayMs)) return;
    if (this.windowStart === undefined) this.windowStart = now;
    if (now >= this.windowStart + WINDOW_MS) {
      this.judge();
      const windows = Math.floor((now - this.windowStart) / WINDOW_MS);
      this.windowStart += windows * WINDOW_MS;
    }
    const i = Math.floor((now - this.windowStart) / BIN_MS);
    if (i >= 0 && i < series.length && queueDelayMs < series[i]!)
      series[i] = Math.max(0, queueDelayMs);
  }

  /** Whether two members were found to share a bottleneck (directly or through a third). */
  sharesWith(a: M, b: M): boolean {
    if (a === b) return true;
    const ca = this.clusters.get(a);
    return ca !== undefined && ca === this.clusters.get(b);
  }

  /**
   * Whether `a` and `b` are linked on evidence: linked, and `a`'s own pair with `b` or
   * with another member of their cluster has had more shared windows than disjoint ones.
   * A pair linked only because pairs start so (score 0) has shown nothing yet.
   */
  sharedShown(a: M, b: M): boolean {
    if (a === b || !this.sharesWith(a, b)) return false;
    const cluster = this.clusters.get(a);
    for (const p of this.pairs) {
      if (!p.linked || p.score <= 0 || (p.a !== a && p.b !== a)) continue;
      if (this.clusters.get(p.a === a ? p.b : p.a) === cluster) return true;
    }
    return false;
  }

  /** Every pair's state (tests and diagnostics). */
  pairStates(): Array<{ a: M; b: M; linked: boolean; score: number; last: WindowVerdict }> {
    return this.pairs.map((p) => ({
      a: p.a,
      b: p.b,
      linked: p.linked,
      score: p.score,
      last: p.last,
    }));
  }

  private judge(): void {
    this.windowsJudged++;
    let changed = false;
    for (const p of this.pairs) {
      const verdict = judgeWindow(pairWindow(this.series.get(p.a)!, this.series.get(p.b)!));
      p.last = verdict;
      if (verdict === 'shared') p.score = Math.min(SCORE_LIMIT, p.score + 1);
      else if (verdict === 'disjoint') p.score = Math.max(-SCORE_LIMIT, p.score - 1);
      const linked = p.linked ? p.score > UNLINK_SCORE : p.score >= SCORE_LIMIT;
      if (linked !== p.linked) {
        p.linked = linked;
        changed = true;
      }
    }
    for (const s of this.series.values()) s.fill(Infinity);
    if (changed) this.recluster();
  }

  private recluster(): void {
    this.clusters.clear();
    let next = 0;
    for (const m of this.series.keys()) this.clusters.set(m, next++);
    // Few paths: merge labels until no linked pair straddles two.
    let merged = true;
    while (merged) {
      merged = false;
      for (const p of this.pairs) {
        if (!p.linked) continue;
        const ca = this.clusters.get(p.a)!;
        const cb = this.clusters.get(p.b)!;
        if (ca === cb) continue;
        const lo = Math.min(ca, cb);
        for (const [m, c] of this.clusters) if (c === ca || c === cb) this.clusters.set(m, lo);
        merged = true;
      }
    }
  }
}
