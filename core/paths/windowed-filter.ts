/**
 * Windowed maximum over time, kept in three samples (Kathleen Nichols' algorithm, as
 * in BBR's bandwidth filter and Linux lib/win_minmax.c). The best, second best and
 * third best samples of successive sub-windows are kept, so that when the best one
 * ages out the next best is already known. No allocation per update: this runs on
 * every ACK.
 *
 * The answer is the maximum over the last `windowMs`, give or take a quarter of the
 * window (the sub-window granularity of the algorithm).
 */
export class WindowedMaxFilter {
  private v0 = 0;
  private t0 = -Infinity;
  private v1 = 0;
  private t1 = -Infinity;
  private v2 = 0;
  private t2 = -Infinity;

  constructor(readonly windowMs: number) {}

  /** The windowed maximum; 0 before any sample. */
  get value(): number {
    return this.v0;
  }

  /** Time of the sample that is the current maximum (-Infinity before any). */
  get valueTime(): number {
    return this.t0;
  }

  reset(value = 0, now = -Infinity): void {
    this.v0 = this.v1 = this.v2 = value;
    this.t0 = this.t1 = this.t2 = now;
  }

  /** Adds a sample taken at `now`; `windowMs` may vary per call (BBR: 10 RTTs). */
  update(value: number, now: number, windowMs: number = this.windowMs): number {
    if (!Number.isFinite(value) || !Number.isFinite(now)) return this.v0;
    if (value >= this.v0 || now - this.t2 > windowMs) {
      this.reset(value, now);
      return value;
    }
    if (value >= this.v1) {
      this.v1 = this.v2 = value;
      this.t1 = this.t2 = now;
    } else if (value >= this.v2) {
      this.v2 = value;
      this.t2 = now;
    }
    // win_minmax.c subwin_update: age the best sample out, and keep the next best
    // samples spread over the window.
    const dt = now - this.t0;
    if (dt > windowMs) {
      this.v0 = this.v1;
      this.t0 = this.t1;
      this.v1 = this.v2;
      this.t1 = this.t2;
      this.v2 = value;
      this.t2 = now;
      if (now - this.t0 > windowMs) {
        this.v0 = this.v1;
        this.t0 = this.t1;
        this.v1 = this.v2;
        this.t1 = this.t2;
        this.v2 = value;
        this.t2 = now;
      }
    } else if (this.t1 === this.t0 && dt > windowMs / 4) {
      this.v1 = this.v2 = value;
      this.t1 = this.t2 = now;
    } else if (this.t2 === this.t1 && dt > windowMs / 2) {
      this.v2 = value;
      this.t2 = now;
    }
    return this.v0;
  }
}

/**
 * A sum over a sliding time window in fixed buckets (a ring), for rates and loss
 * fractions over "the last T milliseconds". Memory and time per update are constant.
 */
export class SlidingSum {
  private readonly buckets: Float64Array;
  private readonly bucketMs: number;
  /** Index (floor(t / bucketMs)) of the newest bucket. */
  private newest = -Infinity;
  private total = 0;

  constructor(
    readonly windowMs: number,
    bucketCount = 10,
  ) {
    if (!(windowMs > 0) || !Number.isInteger(bucketCount) || bucketCount < 1) {
      throw new RangeError(`SlidingSum needs windowMs > 0 and bucketCount >= 1`);
    }
    this.buckets = new Float64Array(bucketCount);
    this.bucketMs = windowMs / bucketCount;
  }

  add(now: number, amount: number): void {
    this.advance(now);
    const i = this.slot(this.newest);
    this.buckets[i] = this.buckets[i]! + amount;
    this.total += amount;
  }

  /** The sum over the window ending at `now`. */
  sum(now: number): number {
    this.advance(now);
    // Guard against drift from repeated float additions and subtractions.
    return this.total < 1e-9 ? 0 : this.total;
  }

  private slot(index: number): number {
    const n = this.buckets.length;
    return ((index % n) + n) % n;
  }

  private advance(now: number): void {
    const index = Math.floor(now / this.bucketMs);
    if (index <= this.newest) return;
    const n = this.buckets.length;
    if (this.newest === -Infinity || index - this.newest >= n) {
      this.buckets.fill(0);
      this.total = 0;
    } else {
      for (let k = this.newest + 1; k <= index; k++) {
        const i = this.slot(k);
        this.total -= this.buckets[i]!;
        this.buckets[i] = 0;
      }
    }
    this.newest = index;
  }
}
