import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplayWindow } from '../../../core/transport/replay-window.js';

const MAX = Number.MAX_SAFE_INTEGER;

/** The behaviour a replay window promises, written as plainly as possible. */
class SetModel {
  private readonly seen = new Set<number>();
  largest = -1;
  constructor(readonly size: number) {}
  has(pn: number): boolean {
    if (pn > this.largest) return false;
    return this.largest - pn >= this.size || this.seen.has(pn);
  }
  add(pn: number): void {
    if (this.largest - pn >= this.size) return;
    this.seen.add(pn);
    this.largest = Math.max(this.largest, pn);
  }
}

describe('ReplayWindow', () => {
  it('starts empty: nothing is seen and the largest is -1', () => {
    const w = new ReplayWindow(64);
    expect(w.largest).toBe(-1);
    expect(w.has(0)).toBe(false);
    expect(w.has(1000)).toBe(false);
  });

  it('reports a packet number as seen once it was added, and only that one', () => {
    const w = new ReplayWindow(64);
    w.add(5);
    expect(w.has(5)).toBe(true);
    expect(w.has(4)).toBe(false);
    expect(w.has(6)).toBe(false);
    w.add(4);
    w.add(5);
    expect(w.has(4)).toBe(true);
    expect(w.largest).toBe(5);
  });

  it('refuses numbers `size` or more below the largest, and accepts unseen ones just inside', () => {
    const w = new ReplayWindow(100);
    w.add(1000);
    expect(w.has(900)).toBe(true);
    expect(w.has(0)).toBe(true);
    expect(w.has(901)).toBe(false);
    w.add(901);
    expect(w.has(901)).toBe(true);
    // Adding a number too old to track changes nothing.
    w.add(10);
    expect(w.largest).toBe(1000);
    expect(w.has(902)).toBe(false);
  });

  it('keeps the bits of numbers still inside the window when it moves forward a little', () => {
    const w = new ReplayWindow(128);
    for (const pn of [3, 31, 32, 33, 64, 100]) w.add(pn);
    w.add(150);
    for (const pn of [31, 32, 33, 64, 100, 150]) expect(w.has(pn)).toBe(true);
    expect(w.has(3)).toBe(true); // now too old
    for (const pn of [30, 34, 99, 101, 149]) expect(w.has(pn)).toBe(false);
  });

  it('forgets everything it saw when it jumps far ahead, so numbers in the gap are fresh', () => {
    const w = new ReplayWindow(64);
    for (let pn = 0; pn < 64; pn++) w.add(pn);
    w.add(10_000);
    expect(w.largest).toBe(10_000);
    for (let pn = 10_000 - 63; pn < 10_000; pn++) expect(w.has(pn)).toBe(false);
    expect(w.has(63)).toBe(true);
    // A jump landing on the ring slots the old numbers used does not resurrect them.
    const v = new ReplayWindow(64);
    v.add(5);
    v.add(5 + 96);
    expect(v.has(5 + 64)).toBe(false);
    expect(v.has(5 + 95)).toBe(false);
    expect(v.has(5 + 96)).toBe(true);
  });

  it('works across the whole 2^53 range of packet numbers', () => {
    const w = new ReplayWindow(4096);
    w.add(2 ** 32 - 1);
    w.add(2 ** 32);
    expect(w.has(2 ** 32 - 1)).toBe(true);
    expect(w.has(2 ** 32 + 1)).toBe(false);
    w.add(MAX - 5000);
    expect(w.has(2 ** 32)).toBe(true);
    w.add(MAX - 1);
    expect(w.has(MAX - 1)).toBe(true);
    expect(w.has(MAX - 2)).toBe(false);
    expect(w.has(MAX - 5000)).toBe(true);
    expect(w.has(MAX)).toBe(false);
    w.add(MAX);
    expect(w.has(MAX)).toBe(true);
    expect(w.largest).toBe(MAX);
  });

  it('treats values that are not packet numbers as seen and never adds them', () => {
    const w = new ReplayWindow(64);
    w.add(10);
    for (const bad of [-1, 1.5, 2 ** 53, Number.NaN, Infinity]) {
      expect(w.has(bad)).toBe(true);
      w.add(bad);
      expect(w.largest).toBe(10);
    }
  });

  it('rejects a size outside 1..2^24 with BRAID_ERR_USAGE', () => {
    for (const size of [0, -1, 1.5, 2 ** 24 + 1]) {
      expect(() => new ReplayWindow(size)).toThrowError(
        expect.objectContaining({ code: 'BRAID_ERR_USAGE' }) as Error,
      );
    }
  });

  it('agrees with a set-based model for any arrival order, size and starting number', () => {
    // Steps relative to the largest so far: mostly near it (reordering, duplicates),
    // sometimes far ahead or far behind, at word boundaries and beyond the ring.
    const step = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: -80, max: 40 }) },
      { weight: 1, arbitrary: fc.integer({ min: -5000, max: 5000 }) },
      { weight: 1, arbitrary: fc.constantFrom(-64, -33, -32, -31, 31, 32, 33, 64, 65) },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: MAX - 2 ** 20 })),
        fc.array(fc.tuple(step, fc.boolean()), { maxLength: 400 }),
        (size, base, steps) => {
          const w = new ReplayWindow(size);
          const m = new SetModel(size);
          for (const [delta, authentic] of steps) {
            const pn = Math.max(0, (m.largest < 0 ? base : m.largest) + delta);
            expect(w.has(pn)).toBe(m.has(pn));
            // A forged packet fails the AEAD and is never added; an authentic one is,
            // even a duplicate (add is then a no-op).
            if (authentic) {
              w.add(pn);
              m.add(pn);
            }
            expect(w.largest).toBe(m.largest);
          }
          // Every number in and just below the final window agrees as well.
          for (let pn = Math.max(0, m.largest - size - 40); pn <= m.largest + 2; pn++) {
            expect(w.has(pn)).toBe(m.has(pn));
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
