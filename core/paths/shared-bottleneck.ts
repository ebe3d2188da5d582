/**
 * Shared-bottleneck detection for the paths of one association, cut down to the one
 * question coupled congestion control needs: do two paths queue at the same place?
 *
 * Why: LIA's linked increase and halving (coupled-congestion.ts, path-recovery.ts
 * `linked`) are what keep an association to one TCP share at a bottleneck its paths
 * share (lab scenario g), and pure cost where the paths' bottlenecks are disjoint (the
 * usual laptop: Wi-Fi and a phone, each with its own queue). RFC 8382 §1 and RFC 8699
 * couple only flows found to share a bottleneck; this does the same for paths.
 *
 * Both signals come from RTT samples' queueing delay (the sample less the path's
 * minimum RTT), fed in congestion avoidance only (two slow starts overshoot at different
 * moments even where they fill one queue).
 *
 * 1. Cut trials: the experiment every loss-based path runs anyway. A path that cuts its
 *    window for a congestion event drains its own queue within a round trip. A queue
 *    that another path shares drains for that path too, and by as much (it is the same
 *    queue); a disjoint queue does not (it holds, or grows as the scheduler moves data
 *    onto that path). So at each cut (congestionEvent) the detector takes every path's
 *    median queueing delay over the round trip before it (the cut path's srtt), and
 *    again over the round trip after the next one, when the drain shows. Where the cut
 *    path's own queue fell clearly (by TRIAL_MIN_DRAIN_MS and TRIAL_MIN_DRAIN_SHARE of
 *    it), the other path's fall over that one says shared (≥ TRIAL_SHARED_MIN_RATIO) or
 *    disjoint (≤ TRIAL_DISJOINT_MAX_RATIO). Two cuts within two round trips of each other
 *    judge nothing for that pair: both queues were cut. Traced in the lab (every trial
 *    of 2 coupled fairness rounds of g and 4 runs of a): at g's shared bottleneck the
 *    ratio was 0.91–1.07 (7 trials), on a's disjoint pair −0.90–0.39 (43 trials, all but
 *    one ≤ 0.3), where every cut path's own queue fell by 5.8–17.7 ms. At g a cut often
 *    drains little, since the competing TCP flow keeps filling the queue: in 4 rounds,
 *    7 of 17 trials fell by less than 30 % of the queue (−1.1 to 6.2 ms), with the
 *    other path's fall alongside (3.1 and 3.1 ms, 6.2 and 4.5). A share of 30 % left
 *    those unjudged and the link unshown for up to 8 s (1.06–1.41 × the competing flow);
 *    at 10 % the link showed within 1–3 s and 9 rounds gave 0.53–1.22 × (median 1.12),
 *    while 4 runs of a had 1 shared trial against 42 disjoint.
 * 2. Windows, in the manner of RFC 8382's passive statistics: each path's samples are
 *    reduced to the smallest queueing delay per BIN_MS bin (the host's scheduling noise
 *    only ever adds delay); over each WINDOW_MS window, for every pair with enough common
 *    bins: lvl = mean of (q₁ + q₂)/2, r = mean |q₁ − q₂| / lvl (how far apart the queues
 *    sit) and ρ, the Pearson correlation of q₁ and q₂. A window looks disjoint when
 *    r > DISJOINT_MIN_SPREAD or ρ < DISJOINT_MAX_CORRELATION (and shared when
 *    r < SHARED_MAX_SPREAD and ρ ≥ SHARED_MIN_CORRELATION; less than MIN_QUEUE_MS of
 *    queue says nothing). Windows only part pairs: they cannot tell one shared queue
 *    from one sender's two disjoint queues of the same depth that it keeps full while
 *    the host's stalls drain both at once. In a (20 ms queues on both links) such windows
 *    looked shared (r 0.09–0.3, ρ 0.8–0.97) about as often as g's did, and when windows
 *    still linked pairs, 3 of 8 runs of a kept the pair linked and shown for most of the
 *    run (those made 46.30 Mbit/s mean, the 5 others 46.81).
 *
 * A pair's score moves one step per verdict within ±SCORE_LIMIT: it links at
 * +SCORE_LIMIT and unlinks at UNLINK_SCORE, so one odd verdict neither relinks an
 * unlinked pair nor unlinks a pair that has shown shared trials.
 *
 * Paths start linked, as RFC 6356 links every subflow, and a pair unlinks at its first
 * net disjoint verdict: where fairness is at stake, coupling holds from the start. Until
 * a pair's first shared trial shows the link (sharedShown), its paths take LIA's
 * increase but keep CUBIC's own decrease: on the lab's disjoint pair (a) the linked
 * halving before the first verdict cut Wi-Fi's window below its BDP (interleaved quick
 * runs: 46.27 against 45.88 Mbit/s mean), and 8 fairness rounds at g gave a median of
 * 1.16 × the competing TCP flow. Started unlinked (as the kernel's MPTCP, which never
 * couples), the pair at g was linked only from the 2nd window, and 4 rounds of
 * `npm run bench -- lab --fairness-only` at c5995dc gave 1.30, 1.52, 1.49 and 1.50 × the
 * competing TCP flow.
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
/** RTT samples kept per member for cut trials (several round trips at a fast path's ACK rate). */
export const TRIAL_SAMPLES = 1024;
/** A trial's round trip is at least this, ms: below it a median window holds too few ACKs. */
export const TRIAL_MIN_RTT_MS = 10;
/** A trial needs this many samples in each of its windows, per path. */
export const TRIAL_MIN_SAMPLES = 3;
/** A cut tells something only when its own path's queue fell by this much, ms… */
export const TRIAL_MIN_DRAIN_MS = 3;
/** …and by this share of the queue it had before the cut. */
export const TRIAL_MIN_DRAIN_SHARE = 0.1;
/** The other path's queue fell by at least this share of the cut path's fall: shared. */
export const TRIAL_SHARED_MIN_RATIO = 0.6;
/** At most this share: disjoint (a fall of the other's queue can only be so much chance). */
export const TRIAL_DISJOINT_MAX_RATIO = 0.3;

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

/** What one cut trial (SharedBottleneckDetector.congestionEvent) found for one pair. */
export type TrialVerdict = 'shared' | 'disjoint' | 'unknown';

/**
 * A cut trial's verdict from the medians of the two paths' queueing delays in the round
 * trip before the cut (pre) and in the round trip after the drain (post), ms: the cut
 * path's own fall must be clear, and the other path's fall is judged against it.
 */
export function judgeTrial(
  cutPre: number,
  cutPost: number,
  otherPre: number,
  otherPost: number,
): TrialVerdict {
  const own = cutPre - cutPost;
  if (own < TRIAL_MIN_DRAIN_MS || own < TRIAL_MIN_DRAIN_SHARE * cutPre) return 'unknown';
  const ratio = (otherPre - otherPost) / own;
  if (ratio >= TRIAL_SHARED_MIN_RATIO) return 'shared';
  if (ratio <= TRIAL_DISJOINT_MAX_RATIO) return 'disjoint';
  return 'unknown';
}

/** The newest RTT samples of one member: time and queueing delay, ms. */
class SampleRing {
  private readonly times = new Float64Array(TRIAL_SAMPLES);
  private readonly values = new Float64Array(TRIAL_SAMPLES);
  private next = 0;
  private count = 0;

  push(t: number, v: number): void {
    this.times[this.next] = t;
    this.values[this.next] = v;
    this.next = (this.next + 1) % TRIAL_SAMPLES;
    if (this.count < TRIAL_SAMPLES) this.count++;
  }

  /** Median of the samples taken in [from, to), or undefined with fewer than TRIAL_MIN_SAMPLES. */
  median(from: number, to: number, scratch: Float64Array): number | undefined {
    let n = 0;
    for (let k = 0; k < this.count; k++) {
      const i = (this.next - 1 - k + TRIAL_SAMPLES) % TRIAL_SAMPLES;
      const t = this.times[i]!;
      if (t < from) break; // pushed in time order: older ones are older still
      if (t < to) scratch[n++] = this.values[i]!;
    }
    if (n < TRIAL_MIN_SAMPLES) return undefined;
    const sorted = scratch.subarray(0, n).sort();
    return n % 2 === 1 ? sorted[n >> 1]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  }
}

/** A cut whose drain is still to be seen: its time, round trip and the queues before it. */
interface Trial<M> {
  readonly member: M;
  readonly at: number;
  readonly rtt: number;
  readonly cutPre: number;
  /** Each other member's median before the cut; removed when that member cuts too. */
  readonly otherPre: Map<M, number>;
}

interface Pair<M> {
  readonly a: M;
  readonly b: M;
  score: number;
  linked: boolean;
  /** The last window's verdict (only a disjoint one moves the score). */
  last: WindowVerdict;
  /** The last cut trial's verdict. */
  lastTrial: TrialVerdict;
}

export class SharedBottleneckDetector<M extends object> {
  private readonly bins = Math.round(WINDOW_MS / BIN_MS);
  private readonly series = new Map<M, Float64Array>();
  private readonly samples = new Map<M, SampleRing>();
  /** Each member's last cut (congestionEvent), ms. */
  private readonly lastCut = new Map<M, number>();
  private trials: Trial<M>[] = [];
  private readonly scratch = new Float64Array(TRIAL_SAMPLES);
  private pairs: Pair<M>[] = [];
  private windowStart: number | undefined;
  /** Member → index of its set of paths that share a bottleneck (linked pairs, transitively). */
  private readonly clusters = new Map<M, number>();
  /** Windows judged so far (diagnostics and tests). */
  windowsJudged = 0;
  /** Cut trials that gave a verdict so far (diagnostics and tests). */
  trialsJudged = 0;

  add(member: M): void {
    if (this.series.has(member)) return;
    for (const other of this.series.keys()) {
      this.pairs.push({
        a: other,
        b: member,
        score: 0,
        linked: true,
        last: 'unknown',
        lastTrial: 'unknown',
      });
    }
    this.series.set(member, new Float64Array(this.bins).fill(Infinity));
    this.samples.set(member, new SampleRing());
    this.recluster();
  }

  remove(member: M): void {
    if (!this.series.delete(member)) return;
    this.samples.delete(member);
    this.lastCut.delete(member);
    this.trials = this.trials.filter((t) => t.member !== member);
    for (const t of this.trials) t.otherPre.delete(member);
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
    this.samples.get(member)!.push(now, Math.max(0, queueDelayMs));
    if (this.trials.length > 0) this.settleTrials(now);
  }

  /**
   * `member` cut its window for a congestion event at `now` (its smoothed RTT `rttMs`):
   * starts a cut trial against every other member that did not cut within two round
   * trips, judged once the drain shows (settleTrials).
   */
  congestionEvent(member: M, now: number, rttMs: number): void {
    const ring = this.samples.get(member);
    if (ring === undefined) return;
    const rtt = Math.max(rttMs, TRIAL_MIN_RTT_MS);
    // A cut of this member inside another's trial makes that pair's drain ambiguous.
    for (const t of this.trials) if (now <= t.at + 2 * t.rtt) t.otherPre.delete(member);
    this.lastCut.set(member, now);
    const cutPre = ring.median(now - rtt, now, this.scratch);
    if (cutPre === undefined) return;
    const otherPre = new Map<M, number>();
    for (const [other, r] of this.samples) {
      if (other === member) continue;
      const last = this.lastCut.get(other);
      if (last !== undefined && last >= now - 2 * rtt) continue;
      const pre = r.median(now - rtt, now, this.scratch);
      if (pre !== undefined) otherPre.set(other, pre);
    }
    if (otherPre.size > 0) this.trials.push({ member, at: now, rtt, cutPre, otherPre });
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
  pairStates(): Array<{
    a: M;
    b: M;
    linked: boolean;
    score: number;
    last: WindowVerdict;
    lastTrial: TrialVerdict;
  }> {
    return this.pairs.map((p) => ({
      a: p.a,
      b: p.b,
      linked: p.linked,
      score: p.score,
      last: p.last,
      lastTrial: p.lastTrial,
    }));
  }

  /** Judges the trials whose drain has been seen: the round trip after the cut's first one. */
  private settleTrials(now: number): void {
    let changed = false;
    let kept = 0;
    for (const t of this.trials) {
      if (now < t.at + 2 * t.rtt) {
        this.trials[kept++] = t;
        continue;
      }
      const from = t.at + t.rtt;
      const to = t.at + 2 * t.rtt;
      const cutPost = this.samples.get(t.member)?.median(from, to, this.scratch);
      if (cutPost === undefined) continue;
      for (const [other, otherPre] of t.otherPre) {
        const otherPost = this.samples.get(other)?.median(from, to, this.scratch);
        const pair = this.pairOf(t.member, other);
        if (otherPost === undefined || pair === undefined) continue;
        const verdict = judgeTrial(t.cutPre, cutPost, otherPre, otherPost);
        if (verdict === 'unknown') continue;
        this.trialsJudged++;
        pair.lastTrial = verdict;
        if (this.vote(pair, verdict === 'shared' ? 1 : -1)) changed = true;
      }
    }
    this.trials.length = kept;
    if (changed) this.recluster();
  }

  private pairOf(a: M, b: M): Pair<M> | undefined {
    return this.pairs.find((p) => (p.a === a && p.b === b) || (p.a === b && p.b === a));
  }

  /** Moves a pair's score one step; true when that links or unlinks it. */
  private vote(p: Pair<M>, step: 1 | -1): boolean {
    p.score = Math.max(-SCORE_LIMIT, Math.min(SCORE_LIMIT, p.score + step));
    const linked = p.linked ? p.score > UNLINK_SCORE : p.score >= SCORE_LIMIT;
    if (linked === p.linked) return false;
    p.linked = linked;
    return true;
  }

  private judge(): void {
    this.windowsJudged++;
    let changed = false;
    for (const p of this.pairs) {
      const verdict = judgeWindow(pairWindow(this.series.get(p.a)!, this.series.get(p.b)!));
      p.last = verdict;
      // Windows only part pairs: one sender's two disjoint queues of the same depth, both
      // kept full and drained together by the host's stalls, look shared (see above).
      if (verdict === 'disjoint' && this.vote(p, -1)) changed = true;
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
