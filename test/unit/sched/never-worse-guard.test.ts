import { describe, expect, it } from 'vitest';
import type { SingleEstimate } from '../../../core/sched/never-worse-guard.js';
import { NeverWorseGuard, createSingleEstimate } from '../../../core/sched/never-worse-guard.js';
import { createSchedContext } from '../../../core/sched/path-view.js';
import { BraidError } from '../../../core/util/errors.js';
import { view } from './views.js';

const best: SingleEstimate = {
  pathId: 2,
  goodput: 10e6,
  latencyMs: 30,
  jitterMs: 2,
  lossRate: 0.001,
};

/** Runs the guard in 100 ms ticks from `from` to `to`, the session getting `rate` B/s. */
function drive(
  g: NeverWorseGuard,
  from: number,
  to: number,
  rate: (t: number) => number,
  opts: { appLimited?: boolean; est?: SingleEstimate } = {},
): Array<{ t: number; mode: string }> {
  const changes: Array<{ t: number; mode: string }> = [];
  let last = g.mode as string;
  for (let t = from; t < to; t += 100) {
    g.onDelivered(t, rate(t) / 10);
    const mode = g.evaluate(t, opts.est ?? best, opts.appLimited ?? false);
    if (mode !== last) changes.push({ t, mode });
    last = mode;
  }
  return changes;
}

describe('NeverWorseGuard', () => {
  it('falls back to the best single path when striping stays worse for the sustain time', () => {
    const g = new NeverWorseGuard({ objective: 'throughput' }, 0);
    const changes = drive(g, 0, 20_000, () => 5e6);
    // Judged after a full 5 s window, worse for 10 s: single at 15 s.
    expect(changes).toEqual([{ t: 15_000, mode: 'single' }]);
    expect(g.singlePathId).toBe(2);
    expect(g.nextRetryAt).toBe(45_000);
  });

  it('stays striping while within the margin, after a short dip, and while app-limited', () => {
    const near = new NeverWorseGuard({ objective: 'throughput' }, 0);
    expect(drive(near, 0, 60_000, () => 9.5e6)).toEqual([]);
    const dip = new NeverWorseGuard({ objective: 'throughput' }, 0);
    // 8 s of poor goodput in the middle of good goodput: never sustained for 10 s.
    expect(drive(dip, 0, 60_000, (t) => (t > 20_000 && t < 28_000 ? 2e6 : 12e6))).toEqual([]);
    const idle = new NeverWorseGuard({ objective: 'throughput' }, 0);
    expect(drive(idle, 0, 60_000, () => 1e5, { appLimited: true })).toEqual([]);
  });

  it('retries striping after the backoff, doubles it when the retry fails, resets it after a good probation', () => {
    const g = new NeverWorseGuard({ objective: 'throughput' }, 0);
    drive(g, 0, 15_100, () => 5e6);
    expect(g.mode).toBe('single');
    expect(g.backoffMs).toBe(30_000);
    // Retry at 45 s; still worse: back to single at 60 s with twice the wait.
    let changes = drive(g, 15_100, 61_000, () => 5e6);
    expect(changes).toEqual([
      { t: 45_000, mode: 'striping' },
      { t: 60_000, mode: 'single' },
    ]);
    expect(g.backoffMs).toBe(60_000);
    expect(g.nextRetryAt).toBe(120_000);
    // Retry at 120 s goes well for a minute, then striping degrades again.
    changes = drive(g, 61_000, 200_000, (t) => (t < 180_000 ? 12e6 : 5e6));
    expect(changes[0]).toEqual({ t: 120_000, mode: 'striping' });
    // The 5 s window average falls below 9 MB/s about 2 s after the drop at 180 s,
    // then 10 s sustained.
    expect(changes[1]).toEqual({ t: 192_000, mode: 'single' });
    expect(g.backoffMs).toBe(30_000);
    expect(g.fallbacks).toBe(3);
  });

  it('never waits more than the maximum backoff', () => {
    const g = new NeverWorseGuard({ objective: 'throughput', retryMaxMs: 100_000 }, 0);
    drive(g, 0, 2_000_000, () => 1e6);
    expect(g.backoffMs).toBe(100_000);
  });

  it('follows the best path while in single mode', () => {
    const g = new NeverWorseGuard({ objective: 'throughput' }, 0);
    drive(g, 0, 15_100, () => 5e6);
    g.evaluate(15_200, { ...best, pathId: 7 }, false);
    expect(g.singlePathId).toBe(7);
  });

  it('compares delivery latency with the best path for latency sessions', () => {
    const g = new NeverWorseGuard({ objective: 'latency' }, 0);
    let mode = 'striping';
    for (let t = 0; t < 20_000; t += 100) {
      g.onLatency(t, 80); // reordering across a slow path costs 50 ms over the best srtt
      mode = g.evaluate(t, best, false);
    }
    expect(mode).toBe('single');
    const ok = new NeverWorseGuard({ objective: 'latency' }, 0);
    for (let t = 0; t < 20_000; t += 100) {
      ok.onLatency(t, 35);
      mode = ok.evaluate(t, best, false);
    }
    expect(mode).toBe('striping');
  });

  it('compares the loss the session saw for loss sessions', () => {
    const g = new NeverWorseGuard({ objective: 'loss' }, 0);
    for (let t = 0; t < 20_000; t += 100) {
      g.onLoss(t, 3, 100);
      g.evaluate(t, best, false);
    }
    expect(g.mode).toBe('single');
    const snap = g.snapshot(20_000);
    expect(snap.measured.lossRate).toBeCloseTo(0.03, 9);
    expect(snap.best.pathId).toBe(2);
  });

  it('compares the jitter of delivery latency for jitter sessions', () => {
    const g = new NeverWorseGuard({ objective: 'jitter' }, 0);
    for (let t = 0, i = 0; t < 20_000; t += 100, i++) {
      g.onLatency(t, i % 2 === 0 ? 30 : 60); // alternating paths 30 ms apart
      g.evaluate(t, best, false);
    }
    expect(g.mode).toBe('single');
  });

  it('finds the best single path per objective among eligible paths', () => {
    const views = [
      view(1, { deliveryRate: 9e6, srtt: 10, jitter: 8, lossRate: 0.02 }),
      view(2, { deliveryRate: 5e6, srtt: 40, jitter: 1, lossRate: 0.001 }),
      view(3, { deliveryRate: 50e6, srtt: 1, jitter: 0, lossRate: 0, role: 'never' }),
    ];
    const ctx = createSchedContext();
    const scratch = new Uint8Array(8);
    const out = createSingleEstimate();
    const pick = (o: 'throughput' | 'latency' | 'jitter' | 'loss') =>
      NeverWorseGuard.bestSingle(o, ctx, views, scratch, out).pathId;
    expect(pick('throughput')).toBe(1);
    expect(pick('latency')).toBe(1);
    expect(pick('jitter')).toBe(2);
    expect(pick('loss')).toBe(2);
    expect(out.goodput).toBeCloseTo(5e6 * 0.999, 3);
  });

  it('refuses a negative or zero window', () => {
    try {
      new NeverWorseGuard({ objective: 'loss', windowMs: 0 }, 0);
      expect.unreachable();
    } catch (err) {
      expect((err as BraidError).code).toBe('BRAID_ERR_CONFIG');
    }
  });
});
