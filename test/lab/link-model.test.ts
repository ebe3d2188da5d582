import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/util/clock.js';
import { isBraidError } from '../../core/util/errors.js';
import {
  LinkDirection,
  burstLoss,
  seededRandom,
  type DirectionParams,
  type Verdict,
} from './link-model.js';

/** Simulated-time tests of one link direction: no TUN, no sockets, no waiting. */

const MTU = 1500;

function link(
  params: Partial<DirectionParams>,
  seed = 1,
): { dir: LinkDirection<number>; clock: ManualClock } {
  const clock = new ManualClock(0);
  return { dir: new LinkDirection<number>(params, clock, seededRandom(seed)), clock };
}

/** Offers `count` packets `gapMs` apart and collects (id, release time) in release order. */
function drive(
  dir: LinkDirection<number>,
  clock: ManualClock,
  count: number,
  gapMs: number,
  size = MTU,
): { released: Array<{ id: number; at: number }>; verdicts: Verdict[]; sentAt: number[] } {
  const released: Array<{ id: number; at: number }> = [];
  const verdicts: Verdict[] = [];
  const sentAt: number[] = [];
  const drainUntil = (t: number): void => {
    for (;;) {
      const due = dir.nextDue();
      if (due > t) break;
      clock.set(Math.max(clock.now(), due));
      let id: number | undefined;
      while ((id = dir.takeDue()) !== undefined) released.push({ id, at: clock.now() });
    }
    clock.set(t);
  };
  for (let i = 0; i < count; i++) {
    drainUntil(i * gapMs);
    sentAt.push(clock.now());
    verdicts.push(dir.offer(i, size));
  }
  drainUntil(1e12);
  return { released, verdicts, sentAt };
}

describe('link model: delay and jitter', () => {
  it('holds a packet for exactly the one-way delay', () => {
    const { dir, clock } = link({ delayMs: 20 });
    expect(dir.offer(1, 100)).toBe('queued');
    clock.set(19.999);
    expect(dir.takeDue()).toBeUndefined();
    clock.set(20);
    expect(dir.takeDue()).toBe(1);
    expect(dir.nextDue()).toBe(Infinity);
  });

  it('keeps packets in order and within delay ± jitter when reordering is off', () => {
    const { dir, clock } = link({ delayMs: 20, jitterMs: 10 });
    const { released, sentAt } = drive(dir, clock, 20_000, 0.1);
    expect(released).toHaveLength(20_000);
    const delays = released.map((r) => r.at - sentAt[r.id]!);
    released.forEach((r, i) => expect(r.id).toBe(i));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...delays)).toBeLessThanOrEqual(30);
    // Holding packets behind slower predecessors pushes the mean above the nominal delay.
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    expect(mean).toBeGreaterThan(20);
  });

  it('spreads delays uniformly over delay ± jitter and reorders when asked', () => {
    const { dir, clock } = link({ delayMs: 20, jitterMs: 10, reorder: true });
    const { released, sentAt } = drive(dir, clock, 20_000, 0.1);
    const delays = released.map((r) => r.at - sentAt[r.id]!);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    // Uniform on [10, 30]: mean 20, standard deviation 20/sqrt(12) = 5.77.
    expect(mean).toBeGreaterThan(19.8);
    expect(mean).toBeLessThan(20.2);
    const sd = Math.sqrt(delays.reduce((a, d) => a + (d - mean) ** 2, 0) / delays.length);
    expect(sd).toBeGreaterThan(5.5);
    expect(sd).toBeLessThan(6.0);
    const outOfOrder = released.filter((r, i) => i > 0 && r.id < released[i - 1]!.id).length;
    expect(outOfOrder).toBeGreaterThan(1000);
  });

  it('never releases a packet before its predecessor after the delay is lowered mid-stream', () => {
    const { dir, clock } = link({ delayMs: 50 });
    dir.offer(1, 100);
    clock.set(1);
    dir.set({ delayMs: 5 });
    dir.offer(2, 100);
    expect(dir.nextDue()).toBe(50);
    clock.set(50);
    expect(dir.takeDue()).toBe(1);
    expect(dir.takeDue()).toBe(2);
  });
});

describe('link model: rate and drop-tail queue', () => {
  it('serialises packets back to back at the configured rate', () => {
    // 12 Mbit/s: a 1500-byte packet takes exactly 1 ms.
    const { dir, clock } = link({ rateBps: 12e6, delayMs: 10 });
    for (let i = 0; i < 5; i++) expect(dir.offer(i, MTU)).toBe('queued');
    const due: number[] = [];
    while (dir.nextDue() !== Infinity) {
      clock.set(dir.nextDue());
      due.push(clock.now());
      dir.takeDue();
    }
    expect(due).toEqual([11, 12, 13, 14, 15]);
  });

  it('delivers the configured rate, not more, when offered twice as much', () => {
    const { dir, clock } = link({ rateBps: 20e6, delayMs: 20, queueBytes: 50_000 });
    // 40 Mbit/s offered for 2 s: a 1500-byte packet every 0.3 ms.
    const { released, verdicts } = drive(dir, clock, 6667, 0.3);
    const inWindow = released.filter((r) => r.at > 520 && r.at <= 1520).length;
    const bps = inWindow * MTU * 8;
    expect(bps).toBeGreaterThan(19.9e6);
    expect(bps).toBeLessThan(20.1e6);
    const drops = verdicts.filter((v) => v === 'queue-full').length;
    expect(drops).toBeGreaterThan(3000);
    expect(dir.stats.queueDropPackets).toBe(drops);
  });

  it('drops the tail once the bytes waiting for the bottleneck would exceed the queue size', () => {
    const { dir, clock } = link({ rateBps: 12e6, queueBytes: 5 * MTU });
    const verdicts = Array.from({ length: 8 }, (_, i) => dir.offer(i, MTU));
    expect(verdicts).toEqual([
      'queued',
      'queued',
      'queued',
      'queued',
      'queued',
      'queue-full',
      'queue-full',
      'queue-full',
    ]);
    expect(dir.backlogBytes()).toBe(5 * MTU);
    // One packet's serialisation time later, one packet's worth of room.
    clock.set(1);
    expect(dir.offer(8, MTU)).toBe('queued');
    expect(dir.offer(9, MTU)).toBe('queue-full');
  });

  it('counts the time the serialiser stood idle between packets, and the gaps over 5 ms', () => {
    // 12 Mbit/s: a 1500-byte packet takes 1 ms to serialise.
    const { dir, clock } = link({ rateBps: 12e6, queueBytes: 0 });
    dir.offer(1, 1500); // busy until 1 ms
    clock.advance(0.5);
    dir.offer(2, 1500); // queued behind it: busy until 2 ms, no idle time
    clock.advance(3.5); // t = 4: idle 2 ms
    dir.offer(3, 1500);
    clock.advance(11); // t = 15: idle 10 ms, a long gap
    dir.offer(4, 1500);
    expect(dir.stats.idleMs).toBeCloseTo(12, 6);
    expect(dir.stats.idleLongMs).toBeCloseTo(10, 6);
    expect(dir.stats.idleLongGaps).toBe(1);
    dir.resetStats();
    expect(dir.stats.idleMs).toBe(0);
  });

  it('queues without limit when queueBytes is 0 and serialises instantly when rate is 0', () => {
    const { dir } = link({ rateBps: 12e6, queueBytes: 0 });
    for (let i = 0; i < 1000; i++) expect(dir.offer(i, MTU)).toBe('queued');
    const fast = link({ delayMs: 3 });
    for (let i = 0; i < 1000; i++) fast.dir.offer(i, MTU);
    expect(fast.dir.nextDue()).toBe(3);
    fast.clock.set(3);
    let n = 0;
    while (fast.dir.takeDue() !== undefined) n++;
    expect(n).toBe(1000);
  });
});

describe('link model: loss', () => {
  it('loses packets at the configured random rate', () => {
    const { dir, clock } = link({ lossRate: 0.02 }, 7);
    const { verdicts } = drive(dir, clock, 100_000, 0.01);
    const lost = verdicts.filter((v) => v === 'lost').length / verdicts.length;
    // Binomial standard deviation is 0.00044; allow five.
    expect(lost).toBeGreaterThan(0.0178);
    expect(lost).toBeLessThan(0.0222);
  });

  it('loses in bursts of the configured mean length with Gilbert-Elliott', () => {
    const { dir, clock } = link({ burst: burstLoss(0.05, 4) }, 11);
    const { verdicts } = drive(dir, clock, 200_000, 0.01);
    const lostShare = verdicts.filter((v) => v === 'lost').length / verdicts.length;
    expect(lostShare).toBeGreaterThan(0.045);
    expect(lostShare).toBeLessThan(0.055);
    const bursts: number[] = [];
    let run = 0;
    for (const v of verdicts) {
      if (v === 'lost') run++;
      else if (run > 0) {
        bursts.push(run);
        run = 0;
      }
    }
    const meanBurst = bursts.reduce((a, b) => a + b, 0) / bursts.length;
    expect(meanBurst).toBeGreaterThan(3.6);
    expect(meanBurst).toBeLessThan(4.4);
  });

  it('loses independently (mean burst near 1) with the same rate of random loss', () => {
    const { dir, clock } = link({ lossRate: 0.05 }, 11);
    const { verdicts } = drive(dir, clock, 200_000, 0.01);
    let bursts = 0;
    let lost = 0;
    verdicts.forEach((v, i) => {
      if (v !== 'lost') return;
      lost++;
      if (i === 0 || verdicts[i - 1] !== 'lost') bursts++;
    });
    expect(lost / bursts).toBeLessThan(1.1);
  });
});

describe('link model: down and up', () => {
  it('black-holes new and in-flight packets while down and forwards again once up', () => {
    const { dir, clock } = link({ delayMs: 10 });
    expect(dir.offer(1, 100)).toBe('queued');
    clock.set(5);
    dir.set({ down: true });
    expect(dir.offer(2, 100)).toBe('down');
    clock.set(10);
    expect(dir.takeDue()).toBeUndefined();
    expect(dir.stats.downDropPackets).toBe(2);
    dir.set({ down: false });
    expect(dir.offer(3, 100)).toBe('queued');
    clock.set(20);
    expect(dir.takeDue()).toBe(3);
    expect(dir.stats.deliveredPackets).toBe(1);
    dir.resetStats();
    expect(Object.values(dir.stats).every((v) => v === 0)).toBe(true);
  });
});

describe('link model: trace replay', () => {
  it('follows the rate and delay of the trace over time and loops', () => {
    const { dir, clock } = link({ rateBps: 1e6, delayMs: 100 });
    dir.setTrace({
      loopMs: 2000,
      points: [
        { atMs: 0, rateBps: 12e6, delayMs: 10 },
        { atMs: 1000, rateBps: 24e6, delayMs: 50 },
      ],
    });
    // t = 0: 1 ms of serialisation at 12 Mbit/s, then 10 ms.
    dir.offer(1, MTU);
    expect(dir.nextDue()).toBe(11);
    clock.set(1500);
    dir.takeDue(1e9);
    // t = 1500: 0.5 ms at 24 Mbit/s, then 50 ms.
    dir.offer(2, MTU);
    expect(dir.nextDue()).toBe(1550.5);
    clock.set(2500);
    dir.takeDue(1e9);
    // t = 2500 is 500 ms into the second loop: the first point again.
    dir.offer(3, MTU);
    expect(dir.nextDue()).toBe(2511);
  });

  it('keeps base parameters before the first point and after replay stops', () => {
    const { dir, clock } = link({ rateBps: 12e6, delayMs: 100 });
    dir.setTrace({ points: [{ atMs: 1000, delayMs: 1 }] });
    dir.offer(1, MTU);
    expect(dir.nextDue()).toBe(101);
    clock.set(1000);
    dir.takeDue(1e9);
    dir.offer(2, MTU);
    expect(dir.nextDue()).toBe(1002);
    clock.set(2000);
    dir.takeDue(1e9);
    dir.setTrace(null);
    dir.offer(3, MTU);
    expect(dir.nextDue()).toBe(2101);
  });

  it('lets a trace override loss and returns to base loss between points that omit it', () => {
    const { dir, clock } = link({ lossRate: 0 }, 3);
    dir.setTrace({
      points: [
        { atMs: 0, lossRate: 1 },
        { atMs: 100, rateBps: 12e6 },
      ],
    });
    expect(dir.offer(1, 100)).toBe('lost');
    clock.set(100);
    expect(dir.offer(2, 100)).toBe('queued');
  });
});

describe('link model: validation', () => {
  it('rejects out-of-range parameters with BRAID_ERR_CONFIG', () => {
    const bad: Array<Partial<DirectionParams>> = [
      { delayMs: -1 },
      { lossRate: 1.5 },
      { rateBps: Number.NaN },
      { queueBytes: Infinity },
      { burst: { p: 2, r: 0.5, lossGood: 0, lossBad: 1 } },
    ];
    for (const params of bad) {
      const { dir } = link({});
      let caught: unknown;
      try {
        dir.set(params);
      } catch (err) {
        caught = err;
      }
      expect(isBraidError(caught, 'BRAID_ERR_CONFIG')).toBe(true);
      expect(dir.current.delayMs).toBe(0);
    }
  });

  it('rejects a trace whose points go back in time', () => {
    const { dir } = link({});
    expect(() => dir.setTrace({ points: [{ atMs: 10 }, { atMs: 5 }] })).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_CONFIG' }) as Error,
    );
  });

  it('derives Gilbert-Elliott transition probabilities from loss rate and burst length', () => {
    const ge = burstLoss(0.1, 5);
    expect(ge.r).toBeCloseTo(0.2);
    expect(ge.p / (ge.p + ge.r)).toBeCloseTo(0.1);
    expect(() => burstLoss(0.1, 0.5)).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_CONFIG' }) as Error,
    );
  });
});
