import { describe, expect, it } from 'vitest';
import { PathMetricsCache } from '../../../core/paths/path-metrics-cache.js';
import { PathRecovery } from '../../../core/paths/path-recovery.js';
import { ManualClock } from '../../../core/util/clock.js';
import { BraidError } from '../../../core/util/errors.js';

const MSS = 1200;
const key = PathMetricsCache.key('udp', '10.0.0.1', '10.0.0.2');

describe('PathMetricsCache (RFC 9040 temporal sharing)', () => {
  it('keeps a threshold per pair of addresses for ttlMs, then forgets it', () => {
    const c = new PathMetricsCache({ ttlMs: 1000 });
    c.record(key, { ssthresh: 50_000 }, 0);
    expect(c.ssthresh(key, 1000)).toBe(50_000);
    expect(c.ssthresh(PathMetricsCache.key('udp', '10.0.0.1', '10.0.0.3'), 0)).toBeUndefined();
    expect(c.ssthresh(PathMetricsCache.key('tcp', '10.0.0.1', '10.0.0.2'), 0)).toBeUndefined();
    expect(c.ssthresh(key, 1001)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('ignores thresholds that are not finite and positive, and holds at most maxEntries', () => {
    const c = new PathMetricsCache({ maxEntries: 2 });
    c.record(key, { ssthresh: Infinity }, 0);
    c.record(key, { ssthresh: NaN }, 0);
    c.record(key, { ssthresh: 0 }, 0);
    expect(c.size).toBe(0);
    c.record('a', { ssthresh: 1 }, 0);
    c.record('b', { ssthresh: 2 }, 0);
    c.record('a', { ssthresh: 3 }, 1); // refreshed: now the newest
    c.record('c', { ssthresh: 4 }, 2); // 'b' is the oldest and goes
    expect([c.ssthresh('a', 2), c.ssthresh('b', 2), c.ssthresh('c', 2)]).toEqual([3, undefined, 4]);
  });

  it('refuses a bad configuration', () => {
    expect(() => new PathMetricsCache({ ttlMs: 0 })).toThrow(BraidError);
    expect(() => new PathMetricsCache({ maxEntries: 0.5 })).toThrow(BraidError);
  });
});

describe('PathRecovery: what a path learns and what the next one starts from', () => {
  const recovery = (congestion: 'cubic' | 'bbr' = 'cubic') => {
    const clock = new ManualClock(1000);
    const r = new PathRecovery<number>({ kind: 'udp', maxDatagramSize: MSS, congestion }, clock);
    return { clock, r };
  };
  /** Sends `n` packets, then acknowledges all but the first two an RTT later (one loss event). */
  const round = (clock: ManualClock, r: PathRecovery<number>, n: number, lose: boolean): void => {
    clock.advance(1);
    const first = r.nextPacketNumber();
    r.onPacketSent(first, MSS, true, first);
    for (let i = 1; i < n; i++) {
      const pn = r.nextPacketNumber();
      r.onPacketSent(pn, MSS, true, pn);
    }
    clock.advance(20);
    const res = r.onAck([{ first: first + (lose ? 2 : 0), last: first + n - 1 }], 0);
    if (res instanceof BraidError) throw res;
  };

  it('starts slow start with a seeded threshold, only before it sent anything', () => {
    const { clock, r } = recovery();
    r.seedSsthresh(30 * MSS);
    expect(r.ssthresh).toBe(30 * MSS);
    // Slow start stops at the threshold instead of overflowing a queue to find it.
    for (let k = 0; k < 4; k++) round(clock, r, Math.floor(r.cwnd / MSS), false);
    expect(r.cwnd).toBeGreaterThanOrEqual(30 * MSS);
    expect(r.cwnd).toBeLessThan(32 * MSS);
    r.seedSsthresh(5 * MSS);
    expect(r.ssthresh).toBe(30 * MSS);
    const bbr = recovery('bbr').r;
    bbr.seedSsthresh(30 * MSS);
    expect(bbr.ssthresh).toBe(Infinity);
  });

  it("learns 0.85 of the window a loss in congestion avoidance cut, not slow start's overshoot", () => {
    const { clock, r } = recovery();
    expect(r.learnedSsthresh).toBeUndefined();
    // Slow start to 80 packets, then a loss: its window overshot, so only half of it.
    for (let k = 0; k < 3; k++) round(clock, r, Math.floor(r.cwnd / MSS), false);
    round(clock, r, Math.floor(r.cwnd / MSS), true);
    expect(r.ssthresh).toBeLessThan(Infinity);
    expect(r.learnedSsthresh).toBe(Math.max(r.ssthresh, r.cwnd / 2));
    // A loss in congestion avoidance: the window then is what the path holds.
    round(clock, r, Math.floor(r.cwnd / MSS), false);
    const before = r.cwnd;
    round(clock, r, Math.floor(r.cwnd / MSS), true);
    expect(r.learnedSsthresh).toBeGreaterThan(0.84 * before);
    expect(r.learnedSsthresh).toBeLessThan(0.9 * before);
    // Later cuts at smaller windows (a busy spell at the end of a download) do not
    // lower it: the next path starts from the largest window a cut found.
    const learned = r.learnedSsthresh!;
    for (let k = 0; k < 4; k++) round(clock, r, Math.floor(r.cwnd / MSS), true);
    expect(r.cwnd).toBeLessThan(0.5 * before);
    expect(r.learnedSsthresh).toBe(learned);
  });
});

describe('PathMetricsCache: merging what successive paths learned', () => {
  it('takes a higher threshold at once and moves halfway towards a lower one', () => {
    const c = new PathMetricsCache({ ttlMs: 1000 });
    c.record(key, { ssthresh: 200_000 }, 0);
    c.record(key, { ssthresh: 40_000 }, 10);
    expect(c.ssthresh(key, 10)).toBe(120_000);
    c.record(key, { ssthresh: 40_000 }, 20);
    expect(c.ssthresh(key, 20)).toBe(80_000);
    c.record(key, { ssthresh: 300_000 }, 30);
    expect(c.ssthresh(key, 30)).toBe(300_000);
    // An expired entry is not merged: the new threshold stands alone.
    c.record(key, { ssthresh: 40_000 }, 1031);
    expect(c.ssthresh(key, 1031)).toBe(40_000);
  });
});
