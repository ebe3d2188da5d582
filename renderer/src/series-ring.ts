import type { Sample } from '../../core/host/contract';

/** One chart point for recharts; objects are pooled and rewritten in place. */
export interface Point {
  t: number;
  latency: number | null;
  jitter: number | null;
  loss: number | null;
  up: number;
  down: number;
}

export type SeriesKey = Exclude<keyof Point, 't'>;
const KEYS: readonly SeriesKey[] = ['latency', 'jitter', 'loss', 'up', 'down'];

/**
 * A fixed-capacity history for one uplink's charts (STYLE §10: charts get ready
 * arrays). Values sit in typed arrays (NaN = no value), written in place; sparklines
 * read them directly. For recharts, `view()` fills one of two arrays of pooled point
 * objects in chronological order and alternates between them, so that a chart sees a
 * new array reference each tick while nothing is allocated once the ring is full.
 */
export class SeriesRing {
  readonly t: Float64Array;
  readonly values: Record<SeriesKey, Float64Array>;
  private head = 0;
  private count = 0;
  private pool: Point[] | undefined;
  private readonly views: [Point[], Point[]] = [[], []];
  private flip = 0;
  private current: Point[] = [];
  private dirty = true;
  /** Bumped on each push, so a chart can tell whether to redraw. */
  version = 0;

  constructor(readonly capacity: number) {
    this.t = new Float64Array(capacity);
    this.values = {
      latency: new Float64Array(capacity),
      jitter: new Float64Array(capacity),
      loss: new Float64Array(capacity),
      up: new Float64Array(capacity),
      down: new Float64Array(capacity),
    };
  }

  get length(): number {
    return this.count;
  }

  push(s: Sample): void {
    this.write(this.head, s);
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /**
   * Coarse history: a sample in the same `bucketMs` as the newest one replaces it (the
   * newest bucket stays live), a later one starts a new bucket.
   */
  pushBucketed(s: Sample, bucketMs: number): void {
    const last = this.count === 0 ? undefined : this.index(this.count - 1);
    if (last !== undefined && Math.floor(this.t[last]! / bucketMs) === Math.floor(s.t / bucketMs))
      this.write(last, s);
    else this.push(s);
  }

  private write(i: number, s: Sample): void {
    this.t[i] = s.t;
    this.values.latency[i] = s.latencyMs ?? NaN;
    this.values.jitter[i] = s.jitterMs ?? NaN;
    this.values.loss[i] = s.lossRate === null ? NaN : s.lossRate * 100;
    this.values.up[i] = s.upBps;
    this.values.down[i] = s.downBps;
    this.dirty = true;
    this.version++;
  }

  /** Physical index of the k-th oldest sample. */
  index(k: number): number {
    return (this.head - this.count + k + this.capacity) % this.capacity;
  }

  /** Points oldest first, for recharts; the same array until the next push. */
  view(): readonly Point[] {
    if (!this.dirty) return this.current;
    const pool = (this.pool ??= Array.from({ length: this.capacity }, () => ({
      t: 0,
      latency: null,
      jitter: null,
      loss: null,
      up: 0,
      down: 0,
    })));
    this.flip ^= 1;
    const out = this.views[this.flip]!;
    out.length = this.count;
    for (let k = 0; k < this.count; k++) {
      const i = this.index(k);
      const p = pool[i]!;
      p.t = this.t[i]!;
      for (const key of KEYS) {
        const x = this.values[key][i]!;
        (p as unknown as Record<SeriesKey, number | null>)[key] = Number.isNaN(x) ? null : x;
      }
      out[k] = p;
    }
    this.current = out;
    this.dirty = false;
    return out;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
    this.dirty = true;
    this.version++;
  }
}
