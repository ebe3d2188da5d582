/**
 * A set of integers kept as sorted, disjoint, non-adjacent half-open ranges
 * [start, end). Used for acknowledged and received byte ranges of a stream, where
 * the ranges are few (one per hole) and mostly grow at the end, so a sorted array
 * with a binary search beats any tree here.
 */
export class RangeSet {
  /** Flattened [start0, end0, start1, end1, ...], sorted. */
  private r: number[] = [];

  get isEmpty(): boolean {
    return this.r.length === 0;
  }

  get rangeCount(): number {
    return this.r.length / 2;
  }

  /** Start of the first range, or undefined. */
  get first(): number | undefined {
    return this.r[0];
  }

  /** End (exclusive) of the range that starts at `first`, or undefined. */
  get firstEnd(): number | undefined {
    return this.r[1];
  }

  /** Largest value + 1, or 0 when empty. */
  get end(): number {
    return this.r.length === 0 ? 0 : this.r[this.r.length - 1]!;
  }

  /** Index of the first range whose end >= value (ranges touching value included). */
  private search(value: number): number {
    let lo = 0;
    let hi = this.r.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.r[mid * 2 + 1]! < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(start: number, end: number): void {
    if (end <= start) return;
    const r = this.r;
    const n = r.length;
    // Fast path: append at the end, or extend the last range.
    if (n === 0 || start > r[n - 1]!) {
      r.push(start, end);
      return;
    }
    if (start >= r[n - 2]! && start <= r[n - 1]!) {
      if (end > r[n - 1]!) r[n - 1] = end;
      return;
    }
    const i = this.search(start);
    let j = i;
    let newStart = start;
    let newEnd = end;
    while (j * 2 < n && r[j * 2]! <= end) {
      if (r[j * 2]! < newStart) newStart = r[j * 2]!;
      if (r[j * 2 + 1]! > newEnd) newEnd = r[j * 2 + 1]!;
      j++;
    }
    r.splice(i * 2, (j - i) * 2, newStart, newEnd);
  }

  /** Removes [start, end) from the set. */
  remove(start: number, end: number): void {
    if (end <= start || this.r.length === 0) return;
    const r = this.r;
    const out: number[] = [];
    const i = this.search(start);
    let j = i;
    while (j * 2 < r.length && r[j * 2]! < end) {
      const s = r[j * 2]!;
      const e = r[j * 2 + 1]!;
      if (s < start) out.push(s, start);
      if (e > end) out.push(end, e);
      j++;
    }
    if (j > i) r.splice(i * 2, (j - i) * 2, ...out);
  }

  /** Whether every value of [start, end) is in the set. */
  covers(start: number, end: number): boolean {
    if (end <= start) return true;
    const i = this.search(start + 1);
    if (i * 2 >= this.r.length) return false;
    return this.r[i * 2]! <= start && this.r[i * 2 + 1]! >= end;
  }

  has(value: number): boolean {
    return this.covers(value, value + 1);
  }

  /** Calls fn for each part of [start, end) that is NOT in the set (the holes). */
  forEachGap(start: number, end: number, fn: (s: number, e: number) => void): void {
    let cursor = start;
    let i = this.search(start + 1);
    while (cursor < end) {
      if (i * 2 >= this.r.length) {
        fn(cursor, end);
        return;
      }
      const s = this.r[i * 2]!;
      const e = this.r[i * 2 + 1]!;
      if (s > cursor) fn(cursor, Math.min(s, end));
      cursor = Math.max(cursor, e);
      i++;
    }
  }

  /** Removes the first range and returns it, or undefined. */
  shift(): [number, number] | undefined {
    if (this.r.length === 0) return undefined;
    const s = this.r[0]!;
    const e = this.r[1]!;
    this.r.splice(0, 2);
    return [s, e];
  }

  /** Drops everything below `value`. */
  trimBelow(value: number): void {
    this.remove(0, value);
  }

  toArray(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.r.length; i += 2) out.push([this.r[i]!, this.r[i + 1]!]);
    return out;
  }

  /** Total count of values in the set. */
  get size(): number {
    let total = 0;
    for (let i = 0; i < this.r.length; i += 2) total += this.r[i + 1]! - this.r[i]!;
    return total;
  }
}
