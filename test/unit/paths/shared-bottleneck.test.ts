import { describe, expect, it } from 'vitest';
import {
  BIN_MS,
  SharedBottleneckDetector,
  WINDOW_MS,
  judgeTrial,
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

describe('one cut trial', () => {
  it('finds one queue where the other path drains with the cut one, two where it does not', () => {
    // The lab's figures (median queueing delay a round trip before the cut → a round
    // trip after the drain, ms): g's shared bottleneck, then a's disjoint pair.
    expect(judgeTrial(24.9, 12.7, 22.7, 10.7)).toBe('shared');
    expect(judgeTrial(23.3, 14.7, 20.8, 11.6)).toBe('shared');
    expect(judgeTrial(17.9, 8.1, 15.5, 15.9)).toBe('disjoint');
    expect(judgeTrial(15.5, 8.5, 9.6, 15.9)).toBe('disjoint'); // the other took the load
    expect(judgeTrial(18, 8, 15, 10)).toBe('unknown'); // half: neither
    // A cut that drained little (under 3 ms, or under 10 % of its queue) tells nothing.
    expect(judgeTrial(18, 16, 15, 15)).toBe('unknown');
    expect(judgeTrial(40, 36.5, 15, 15)).toBe('unknown');
    // At a shared queue that a TCP flow keeps filling, a cut drains little, for both.
    expect(judgeTrial(22.9, 19.8, 26.4, 23.3)).toBe('shared');
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

  /**
   * One cut trial: `cut` cuts at `from` + 2 RTTs (RTT 40 ms) and its queue falls from 18
   * to 8 ms a round trip later; each other member's queue is 15 ms before and `after`
   * after, from its own entry in `others` (18 → 8 too where the queue is the cut one's).
   */
  function cutTrial(
    d: SharedBottleneckDetector<object>,
    cut: object,
    others: Array<[object, number]>,
    from: number,
    noise: () => number,
  ): number {
    const rtt = 40;
    const at = from + 2 * rtt;
    const q =
      (before: number, after: number) =>
      (t: number): number =>
        t < at + rtt / 2 ? before : after;
    const members: Array<[object, (t: number) => number]> = [
      [cut, q(18, 8)],
      ...others.map(([m, after]): [object, (t: number) => number] => [
        m,
        q(after === 8 ? 18 : 15, after),
      ]),
    ];
    const t = feed(d, members, from, 2 * rtt - 5, noise);
    d.congestionEvent(cut, at, rtt);
    return feed(d, members, t, 2 * rtt + 20, noise);
  }

  it('starts linked, shows the link when a cut drains both queues, unlinks when a cut drains only its own, and relinks only after two net shared trials', () => {
    const random = seededRandom(11);
    const noise = (): number => random() * 1.5;
    const d = new SharedBottleneckDetector<object>();
    const a = {};
    const b = {};
    d.add(a);
    d.add(b);
    expect(d.sharesWith(a, b)).toBe(true); // linked until shown otherwise (RFC 6356)
    expect(d.sharedShown(a, b)).toBe(false);
    // a's cut drains b's queue as much as its own: one queue.
    let t = cutTrial(d, a, [[b, 8]], 0, noise);
    expect(d.trialsJudged).toBe(1);
    expect(d.pairStates()[0]).toMatchObject({ linked: true, lastTrial: 'shared', score: 1 });
    expect(d.sharedShown(a, b)).toBe(true);
    t = cutTrial(d, b, [[a, 8]], t + 200, noise);
    expect(d.pairStates()[0]).toMatchObject({ linked: true, score: 2 });

    // The bottleneck moves: each path now queues on its own, and a cut drains only the
    // cutting path's queue (the other's holds, or grows as the scheduler moves data
    // onto it). Hysteresis keeps the link through two disjoint trials, drops it at the third.
    const parted: boolean[] = [];
    for (const [cut, other, after] of [
      [a, b, 15],
      [b, a, 16],
      [a, b, 15],
    ] as const) {
      t = cutTrial(d, cut, [[other, after]], t + 200, noise);
      parted.push(d.sharesWith(a, b));
    }
    expect(parted).toEqual([true, true, false]);
    expect(d.pairStates()[0]).toMatchObject({ lastTrial: 'disjoint', score: -1 });
    // Shared again: one trial is not enough (score -1 -> 0 -> 1), the third relinks.
    const back: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      t = cutTrial(d, i % 2 === 0 ? a : b, [[i % 2 === 0 ? b : a, 8]], t + 200, noise);
      back.push(d.sharesWith(a, b));
    }
    expect(back).toEqual([false, false, true]);
  });

  it('judges no trial where both paths cut within two round trips, or where the cut drained little', () => {
    const random = seededRandom(5);
    const noise = (): number => random() * 1.5;
    const d = new SharedBottleneckDetector<object>();
    const [a, b] = [{}, {}];
    d.add(a);
    d.add(b);
    /** Steady queues of `qa` and `qb` ms for `ms` from `from`. */
    const hold = (qa: number, qb: number, from: number, ms: number): number =>
      feed(
        d,
        [
          [a, () => qa],
          [b, () => qb],
        ],
        from,
        ms,
        noise,
      );
    // b cut just before a: whatever drains, both windows moved.
    let t = hold(18, 15, 0, 100);
    d.congestionEvent(b, t + 10, 40); // 70 ms before a's cut in cutTrial
    t = cutTrial(d, a, [[b, 15]], t, noise);
    // b cuts again while a's trial waits for its drain.
    t = hold(18, 15, t, 80);
    d.congestionEvent(a, t, 40);
    d.congestionEvent(b, t + 20, 40);
    t = hold(8, 15, t, 200);
    // A cut whose own queue hardly moved (18 -> 16 ms) says nothing either.
    t = hold(18, 15, t + 400, 80);
    d.congestionEvent(a, t, 40);
    hold(16, 15, t, 200);
    expect(d.trialsJudged).toBe(0);
    expect(d.pairStates()[0]).toMatchObject({ lastTrial: 'unknown' });
  });

  it('does not link two disjoint queues that look alike: windows only part pairs', () => {
    // The lab's scenario a: one sender keeps two disjoint 20 ms queues full, and the
    // host's stalls drain both at once, so their windows look shared; every cut drains
    // only its own queue.
    const random = seededRandom(9);
    const noise = (): number => random() * 1.5;
    const d = new SharedBottleneckDetector<object>();
    const [a, b] = [{}, {}];
    d.add(a);
    d.add(b);
    const alike = (t: number): number => (t % 400 < 50 ? 1 : 16);
    let t = feed(
      d,
      [
        [a, alike],
        [b, alike],
      ],
      0,
      2 * WINDOW_MS,
      noise,
    );
    expect(d.pairStates()[0]).toMatchObject({ last: 'shared', score: 0, linked: true });
    expect(d.sharedShown(a, b)).toBe(false);
    t = cutTrial(d, a, [[b, 15]], t, noise);
    expect(d.pairStates()[0]).toMatchObject({ lastTrial: 'disjoint', linked: false });
    feed(
      d,
      [
        [a, alike],
        [b, alike],
      ],
      t,
      5 * WINDOW_MS,
      noise,
    );
    expect(d.pairStates()[0]).toMatchObject({ last: 'shared', score: -1, linked: false });
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
