import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplayWindow } from '../../../core/transport/replay-window.js';

describe('ReplayWindow', () => {
  it('accepts each packet number once', () => {
    const w = new ReplayWindow(64);
    expect(w.has(5)).toBe(false);
    w.add(5);
    expect(w.has(5)).toBe(true);
    expect(w.has(4)).toBe(false);
    w.add(4);
    expect(w.has(4)).toBe(true);
  });

  it('treats numbers older than the window as replays and forgets bits when it jumps ahead', () => {
    const w = new ReplayWindow(64);
    w.add(10);
    w.add(10 + 64 + 5);
    expect(w.has(10)).toBe(true);
    expect(w.has(10 + 64)).toBe(false);
    w.add(Number.MAX_SAFE_INTEGER - 1);
    expect(w.has(Number.MAX_SAFE_INTEGER - 1)).toBe(true);
    expect(w.has(Number.MAX_SAFE_INTEGER - 2)).toBe(false);
    expect(w.has(10 + 64 + 5)).toBe(true);
  });

  it('agrees with a plain set model within the window for any arrival order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 600 }), { maxLength: 300 }), (pns) => {
        const w = new ReplayWindow(128);
        const seen = new Set<number>();
        let largest = -1;
        for (const pn of pns) {
          const tooOld = largest - pn >= 128;
          const expected = tooOld || seen.has(pn);
          expect(w.has(pn)).toBe(expected);
          if (!expected) {
            w.add(pn);
            seen.add(pn);
            largest = Math.max(largest, pn);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
