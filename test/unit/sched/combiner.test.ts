import { describe, expect, it } from 'vitest';
import {
  FEEDBACK_MS,
  LOSS_STAGE_EVIDENCE_PACKETS,
  SessionScheduler,
} from '../../../core/sched/combiner.js';
import { createSchedContext } from '../../../core/sched/path-view.js';
import { BraidError } from '../../../core/util/errors.js';
import { fraction, shares, view } from './views.js';

const reliable = { ...createSchedContext('reliable-ordered'), backlogBytes: 1e9 };
const unreliable = { ...createSchedContext('unreliable-unordered'), backlogBytes: 1e9 };

describe('SessionScheduler: priorities, tolerance and sliders', () => {
  // Two equal-rate paths; path 2 loses 2 % (3 ε beyond the 0.5 % tolerance).
  const lossy = () => [view(1, { lossRate: 0 }), view(2, { lossRate: 0.02 })];

  it('loss before throughput at slider 1 keeps the lossy path out entirely', () => {
    const s = new SessionScheduler({ priorities: ['loss', 'throughput'], lossVsThroughput: 1 });
    expect(shares(s, reliable, lossy(), 2000).get(2)).toBe(0);
  });

  it('slider 0 gives pure throughput: shares by rate, loss ignored but for what it loses', () => {
    const s = new SessionScheduler({ priorities: ['loss', 'throughput'], lossVsThroughput: 0 });
    // Reliable: each path's share is its rate × (1 − loss).
    expect(fraction(shares(s, reliable, lossy(), 20_000), 2)).toBeCloseTo(0.98 / 1.98, 2);
  });

  it('slider 0.5 cuts the lossy path to (1−w)/((1−w)+w·e) = 1/4 of its share at e = 3', () => {
    const s = new SessionScheduler({ priorities: ['loss', 'throughput'], lossVsThroughput: 0.5 });
    const m = shares(s, reliable, lossy(), 40_000);
    expect(s.gains[1]).toBeCloseTo(0.25, 12);
    expect(fraction(m, 2)).toBeCloseTo((0.25 * 0.98) / (1 + 0.25 * 0.98), 2);
  });

  it('a loss rate resting on a handful of packets neither cuts a path nor sets the bar', () => {
    const s = new SessionScheduler({ priorities: ['loss', 'throughput'], lossVsThroughput: 0.5 });
    // Lab e: the 2 % path lost 2 of its first 5 packets. Read as 40 %, it got a gain of
    // 0 and no traffic to correct the figure with.
    // Its share stays rate × (1 − loss), what a reliable session gets through it.
    const early = [view(1, { lossRate: 0 }), view(2, { lossRate: 0.4, lossSamples: 5 })];
    expect(fraction(shares(s, reliable, early, 20_000), 2)).toBeCloseTo(0.6 / 1.6, 2);
    // A clean path with 10 packets behind it is no reference for one known at 2 %.
    const unproven = [view(1, { lossRate: 0, lossSamples: 10 }), view(2, { lossRate: 0.02 })];
    expect(fraction(shares(s, reliable, unproven, 20_000), 2)).toBeCloseTo(0.98 / 1.98, 2);
    // With LOSS_STAGE_EVIDENCE_PACKETS behind it the figure counts (e = 79: gain < 2 %).
    const known = [
      view(1, { lossRate: 0 }),
      view(2, { lossRate: 0.4, lossSamples: LOSS_STAGE_EVIDENCE_PACKETS }),
    ];
    expect(shares(s, reliable, known, 2000).get(2)).toBe(0);
  });

  it('feedback still penalizes a path whose loss rate is not yet known', () => {
    const s = new SessionScheduler({ priorities: ['loss', 'throughput'], lossVsThroughput: 1 });
    const views = [view(1, { lossSamples: 0 }), view(2, { lossSamples: 0 })];
    s.feedback({ objective: 'loss', pathId: 2, severity: 1 }, 0);
    expect(shares(s, reliable, views, 2000).get(2)).toBe(0);
  });

  it('a difference below ε does not count: the next objective decides', () => {
    const views = [view(1, { lossRate: 0.001 }), view(2, { lossRate: 0.004 })];
    const s = new SessionScheduler({ priorities: ['loss', 'throughput'], lossVsThroughput: 1 });
    const f = fraction(shares(s, unreliable, views, 20_000), 2);
    expect(f).toBeCloseTo(0.5, 2);
    // With a tighter ε the 0.3 % counts.
    const strict = new SessionScheduler({
      priorities: ['loss', 'throughput'],
      lossVsThroughput: 1,
      epsilon: { loss: 0.001 },
    });
    expect(shares(strict, unreliable, views, 2000).get(2)).toBe(0);
  });

  it('is lexicographic: latency decides only among paths loss found equal', () => {
    const views = [
      view(1, { lossRate: 0, srtt: 80 }),
      view(2, { lossRate: 0.003, srtt: 20 }),
      view(3, { lossRate: 0.05, srtt: 5 }),
    ];
    const s = new SessionScheduler({
      priorities: ['loss', 'latency', 'throughput'],
      lossVsThroughput: 1,
      latencyVsThroughput: 1,
    });
    const m = shares(s, reliable, views, 1000);
    expect(m.get(3)).toBe(0);
    expect(m.get(1)).toBe(0);
    expect(m.get(2)).toBe(1_200_000);
  });

  it('latency first keeps to the fast path; throughput first stripes over both', () => {
    const views = () => [view(1, { srtt: 20 }), view(2, { srtt: 100 })];
    const lat = new SessionScheduler({
      priorities: ['latency', 'throughput'],
      latencyVsThroughput: 1,
    });
    expect(shares(lat, reliable, views(), 2000).get(2)).toBe(0);
    const tput = new SessionScheduler({
      priorities: ['throughput', 'latency'],
      latencyVsThroughput: 1,
    });
    expect(fraction(shares(tput, reliable, views(), 20_000), 2)).toBeCloseTo(0.5, 2);
  });

  it('jitter keeps to the steadiest path and admits only paths of like jitter and delay', () => {
    const s = new SessionScheduler({
      priorities: ['jitter', 'throughput'],
      latencyVsThroughput: 1,
    });
    const views = [
      view(1, { jitter: 1, srtt: 30 }),
      view(2, { jitter: 3, srtt: 32 }), // like path 1: shares the load
      view(3, { jitter: 2, srtt: 90 }), // steady but 60 ms further: mixing it adds jitter
      view(4, { jitter: 40, srtt: 30 }),
    ];
    const m = shares(s, reliable, views, 20_000);
    expect(fraction(m, 1)).toBeCloseTo(0.5, 2);
    expect(fraction(m, 2)).toBeCloseTo(0.5, 2);
    expect(m.get(3)).toBe(0);
    expect(m.get(4)).toBe(0);
  });

  it('duplicates unreliable packets when loss ranks first, as many copies as the slider allows', () => {
    const views = [view(1, { lossRate: 0.02 }), view(2, { lossRate: 0.03 })];
    const full = new SessionScheduler({
      priorities: ['loss', 'throughput'],
      lossVsThroughput: 1,
      maxCopies: 2,
      epsilon: { loss: 0.05 },
    });
    expect(full.pick(unreliable, views, 1200, 0).duplicateCount).toBe(1);
    // The copy's path has no window room: an app-limited session's packet waits for it
    // instead of going alone; a backlogged one goes alone (its rate is not held to the
    // slower path's).
    const shut = [views[0]!, { ...views[1]!, canSend: false, bytesInFlight: views[1]!.cwnd }];
    expect(full.pick({ ...unreliable, backlogBytes: 2400 }, shut, 1200, 0).index).toBe(-1);
    const alone = full.pick(unreliable, shut, 1200, 0);
    expect(alone.pathId).toBe(1);
    expect(alone.duplicateCount).toBe(0);
    const none = new SessionScheduler({
      priorities: ['loss', 'throughput'],
      lossVsThroughput: 0.4,
      maxCopies: 2,
    });
    expect(none.pick(unreliable, views, 1200, 0).duplicateCount).toBe(0);
    // Reliable sessions never duplicate, and throughput first means no copies either.
    expect(full.pick(reliable, views, 1200, 0).duplicateCount).toBe(0);
    const tput = new SessionScheduler({ priorities: ['throughput', 'loss'], lossVsThroughput: 1 });
    expect(tput.pick(unreliable, views, 1200, 0).duplicateCount).toBe(0);
  });

  it('appends throughput when the app did not rank it', () => {
    const s = new SessionScheduler({ priorities: ['latency'] });
    expect(s.stages).toEqual(['latency', 'throughput']);
  });

  it('refuses repeated objectives and sliders outside 0..1', () => {
    for (const bad of [
      { priorities: ['loss', 'loss'] as const },
      { priorities: ['loss'] as const, lossVsThroughput: 1.5 },
      { priorities: ['loss'] as const, epsilon: { loss: 0 } },
    ]) {
      try {
        new SessionScheduler({ ...bad, priorities: [...bad.priorities] });
        expect.unreachable();
      } catch (err) {
        expect((err as BraidError).code).toBe('BRAID_ERR_CONFIG');
      }
    }
  });
});

describe('SessionScheduler: application feedback', () => {
  it('"too much delay" moves a throughput session onto the fast path for a while', () => {
    const views = [view(1, { srtt: 20 }), view(2, { srtt: 150 })];
    const s = new SessionScheduler({ priorities: ['throughput'] });
    expect(fraction(shares(s, reliable, views, 10_000, 1200, 0), 2)).toBeCloseTo(0.5, 2);
    s.feedback({ objective: 'latency', severity: 1 }, 1000);
    expect(s.stages).toEqual(['latency', 'throughput']);
    expect(shares(s, reliable, views, 2000, 1200, 1000).get(2)).toBe(0);
    // Half-way through, the weight has faded to 0.5: the slow path is back, reduced.
    const mid = fraction(shares(s, reliable, views, 20_000, 1200, 1000 + FEEDBACK_MS / 2), 2);
    expect(mid).toBeGreaterThan(0.01);
    expect(mid).toBeLessThan(0.2);
    // And after it, back to the app's own rule.
    const after = shares(s, reliable, views, 20_000, 1200, 1000 + FEEDBACK_MS);
    expect(fraction(after, 2)).toBeCloseTo(0.5, 2);
  });

  it('keeps every objective that feedback added as a stage', () => {
    const s = new SessionScheduler({ priorities: ['throughput'] });
    s.feedback({ objective: 'loss' }, 0);
    s.feedback({ objective: 'latency' }, 1);
    expect(s.stages).toEqual(['loss', 'latency', 'throughput']);
    expect(s.weight('loss', 1)).toBeGreaterThan(0.45);
    expect(s.weight('loss', FEEDBACK_MS)).toBe(0);
  });

  it('a report against one path cuts its share', () => {
    const views = [view(1), view(2)];
    const s = new SessionScheduler({ priorities: ['throughput'] });
    s.feedback({ objective: 'loss', pathId: 2, severity: 0.8 }, 0);
    const m = shares(s, reliable, views, 20_000);
    expect(fraction(m, 2)).toBeCloseTo(0.2 / 1.2, 2);
  });

  it('a jitter report against the held path moves a jitter session off it', () => {
    const views = [view(1, { jitter: 2 }), view(2, { jitter: 6, srtt: 22 })];
    const s = new SessionScheduler({ priorities: ['jitter'], latencyVsThroughput: 1 });
    expect(s.pick(reliable, views, 1200, 0).pathId).toBe(1);
    s.feedback({ objective: 'jitter', pathId: 1, severity: 1 }, 0);
    // The held path's jitter now counts up to 4·ε = 20 ms more (fading): after the
    // hysteresis hold time the session moves.
    s.pick(reliable, views, 1200, 10);
    expect(shares(s, reliable, views, 100, 1200, 3000).get(1)).toBe(0);
  });

  it('"too slow" lowers the sliders: a loss-first session uses the lossy path again', () => {
    const views = [view(1, { lossRate: 0 }), view(2, { lossRate: 0.02 })];
    const s = new SessionScheduler({ priorities: ['loss', 'throughput'], lossVsThroughput: 0.6 });
    const before = fraction(shares(s, reliable, views, 20_000), 2);
    s.feedback({ objective: 'throughput', severity: 0.6 }, 0);
    const after = fraction(shares(s, reliable, views, 20_000), 2);
    expect(after).toBeGreaterThan(before + 0.2);
  });

  it('refuses a report without a known objective', () => {
    const s = new SessionScheduler({ priorities: ['throughput'] });
    try {
      s.feedback({ objective: 'speed' as 'loss' }, 0);
      expect.unreachable();
    } catch (err) {
      expect((err as BraidError).code).toBe('BRAID_ERR_USAGE');
    }
  });
});

describe('SessionScheduler: repairs', () => {
  // Wi-Fi (20 ms) with room, DSL (45 ms) with room, a phone (100 ms) with 40 KB queued.
  const paths = () => [
    view(1, { srtt: 20, minRtt: 20, deliveryRate: 3.75e6, cwnd: 200_000 }),
    view(2, { srtt: 50, minRtt: 45, deliveryRate: 1.5e6, cwnd: 200_000 }),
    view(3, { srtt: 110, minRtt: 100, deliveryRate: 375e3, bytesInFlight: 40_000 }),
  ];

  it('sends lost stream data where it arrives first, whatever the shares say', () => {
    const s = new SessionScheduler({ priorities: ['throughput'] });
    const views = paths();
    const bulk = shares(s, reliable, views, 3000);
    expect(bulk.get(3)).toBeGreaterThan(0);
    const repair = shares(s, { ...reliable, repair: true }, views, 200);
    expect([...repair.entries()].filter(([, b]) => b > 0).map(([id]) => id)).toEqual([1]);
    expect(s.repairs).toBe(200);
  });

  it('waits for the earliest path rather than repair on a later one, and keeps out of what a stage excluded', () => {
    const s = new SessionScheduler({ priorities: ['loss', 'throughput'], lossVsThroughput: 1 });
    const views = paths();
    // Wi-Fi's pacer holds it for 2 ms more: still sooner than DSL's 25 ms.
    Object.assign(views[0]!, { canSend: false, sendAt: 2 });
    const d = s.pick({ ...reliable, repair: true }, views, 1200, 0);
    expect(d.index).toBe(-1);
    expect(d.retryAt).toBe(2);
    // With 200 KB queued on Wi-Fi (53 ms) DSL is sooner.
    Object.assign(views[0]!, { bytesInFlight: 190_000 });
    expect(s.pick({ ...reliable, repair: true }, views, 1200, 0).pathId).toBe(2);
    // Wi-Fi losing 5 % is out at slider 1: the repair goes on DSL.
    Object.assign(views[0]!, { canSend: true, bytesInFlight: 0, lossRate: 0.05 });
    expect(s.pick({ ...reliable, repair: true }, views, 1200, 0).pathId).toBe(2);
  });
});
