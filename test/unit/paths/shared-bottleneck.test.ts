import { describe, expect, it } from 'vitest';
import {
  BIN_MS,
  SharedBottleneckDetector,
  WINDOW_MS,
  judgeWindow,
  pairWindow,
} from '../../../core/paths/shared-bottleneck.js';
import { seededRandom } from '../../support/impaired-subflow.js';

const BINS = WINDOW_MS / BIN_MS;

/** A queue that fills over `periodMs` and drains at once (a drop-tail sawtooth), ms. */
const sawtooth =
  (peakMs: number, periodMs: number, phaseMs = 0) =>
  (t: number): number =>
    (((t + phaseMs) % periodMs) / periodMs) * peakMs;

/** Per-bin queueing delays of one window: `queue(t)` plus host noise that only adds. */
function series(queue: (t: number) => number, noise: () => number, from = 0): Float64Array {
  const s = new Float64Array(BINS).fill(Infinity);
  for (let i = 0; i < BINS; i++) {
    for (let k = 0; k < 5; k++) {
      const t = from + i * BIN_MS + k * 10;
      s[i] = Math.min(s[i]!, queue(t) + noise());
    }
  }
  return s;
}

describe('one window of two paths’ queueing delays', () => {
  const random = seededRandom(7);
  const noise = (): number => random() * random() * 6; // 0–6 ms, mostly small

  it('looks shared when one queue adds the same delay to both', () => {
    const q = sawtooth(25, 800);
    const w = pairWindow(series(q, noise), series(q, noise));
    expect(w).toBeDefined();
    expect(w!.spread).toBeLessThan(0.35);
    expect(w!.correlation).toBeGreaterThan(0.75);
    expect(judgeWindow(w)).toBe('shared');
  });

  it('looks disjoint when each path fills its own queue on its own cycle', () => {
    // One fills while the other has just dropped.
    const w = pairWindow(series(sawtooth(20, 1000), noise), series(sawtooth(15, 1000, 450), noise));
    expect(w, JSON.stringify(w)).toBeDefined();
    expect(judgeWindow(w), JSON.stringify(w)).toBe('disjoint');
  });

  it('says nothing without a queue to compare, or with too few common bins', () => {
    const idle = (): number => 0;
    expect(judgeWindow(pairWindow(series(idle, noise), series(idle, noise)))).toBe('unknown');
    const sparse = series(sawtooth(25, 800), noise);
    for (let i = 0; i < BINS; i += 2) sparse[i] = Infinity;
    expect(pairWindow(sparse, series(sawtooth(25, 800), noise))).toBeUndefined();
    expect(judgeWindow(undefined)).toBe('unknown');
  });
});

describe('SharedBottleneckDetector', () => {
  /** Feeds `ms` of RTT samples every 5 ms to each member from its queue function. */
  function feed(
    d: SharedBottleneckDetector<object>,
    members: Array<[object, (t: number) => number]>,
    from: number,
    ms: number,
    noise: () => number,
  ): number {
    for (let t = from; t <= from + ms; t += 5) {
      for (const [m, q] of members) d.observe(m, q(t) + noise(), t);
    }
    return from + ms + 5;
  }

  it('starts linked, keeps the link through shared windows, unlinks after its queues part, and relinks only after two net shared windows', () => {
    const random = seededRandom(11);
    const noise = (): number => random() * random() * 6;
    const d = new SharedBottleneckDetector<object>();
    const a = {};
    const b = {};
    d.add(a);
    d.add(b);
    const shared = sawtooth(25, 900);
    expect(d.sharesWith(a, b)).toBe(true); // linked until shown otherwise (RFC 6356)
    const both: Array<[object, (t: number) => number]> = [
      [a, shared],
      [b, shared],
    ];
    let t = feed(d, both, 0, WINDOW_MS, noise);
    t = feed(d, both, t, WINDOW_MS, noise);
    expect(d.windowsJudged).toBe(2);
    expect(d.sharesWith(a, b)).toBe(true);
    expect(d.pairStates()[0]).toMatchObject({ linked: true, last: 'shared', score: 2 });

    // The bottleneck moves: each path now queues on its own. Hysteresis keeps the link
    // through two disjoint windows and drops it at the third.
    const apart: Array<[object, (t: number) => number]> = [
      [a, sawtooth(20, 1000)],
      [b, sawtooth(15, 1000, 450)],
    ];
    const parted: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      t = feed(d, apart, t, WINDOW_MS, noise);
      parted.push(d.sharesWith(a, b));
    }
    expect(parted).toEqual([true, true, false]);
    // Shared again: one window is not enough (score -1 -> 0 -> 1), the third relinks.
    const back: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      t = feed(d, both, t, WINDOW_MS, noise);
      back.push(d.sharesWith(a, b));
    }
    expect(back).toEqual([false, false, true]);
  });

  it('unlinks disjoint queues and never relinks them; a linked pair stays one set', () => {
    const random = seededRandom(3);
    const noise = (): number => random() * random() * 6;
    const d = new SharedBottleneckDetector<object>();
    const [a, b, c] = [{}, {}, {}];
    d.add(a);
    d.add(b);
    d.add(c);
    const shared = sawtooth(30, 1100);
    const own = sawtooth(12, 600, 200);
    feed(
      d,
      [
        [a, shared],
        [b, shared],
        [c, own],
      ],
      0,
      10 * WINDOW_MS,
      noise,
    );
    expect(d.windowsJudged).toBe(10);
    expect(d.sharesWith(a, b)).toBe(true);
    expect(d.sharesWith(a, c)).toBe(false);
    expect(d.sharesWith(b, c)).toBe(false);
    d.remove(b);
    expect(d.sharesWith(a, b)).toBe(false);
    expect(d.pairStates()).toHaveLength(1);
  });

  it('ignores samples from a member it does not know, and non-finite delays', () => {
    const d = new SharedBottleneckDetector<object>();
    const a = {};
    d.observe({}, 5, 0);
    d.add(a);
    d.observe(a, Number.NaN, 0);
    d.observe(a, 5, 10);
    d.observe(a, 5, 10 + 2 * WINDOW_MS);
    expect(d.windowsJudged).toBe(1);
    expect(d.sharesWith(a, a)).toBe(true);
  });
});
