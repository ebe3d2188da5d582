import { describe, expect, it } from 'vitest';
import { LinkMetrics, type PathCounters } from '../../../core/host/link-metrics.js';
import { ManualClock } from '../../../core/util/clock.js';

const base: PathCounters = {
  srttMs: 20,
  latestRttMs: 20,
  hasRtt: true,
  lost: 0,
  sent: 0,
  bytesSent: 0,
  bytesReceived: 0,
};

describe('per-path metrics from successive counter reads', () => {
  it('has no latency or loss before the first RTT sample and packet', () => {
    const m = new LinkMetrics({ clock: new ManualClock() });
    m.update({ ...base, hasRtt: false });
    expect(m.latencyMs).toBeNull();
    expect(m.jitterMs).toBeNull();
    expect(m.lossRate).toBeNull();
  });

  it('computes RFC 3550 jitter: J += (|D| - J) / 16 over new RTT samples only', () => {
    const clock = new ManualClock();
    const m = new LinkMetrics({ clock });
    const rtts = [20, 30, 20, 30, 30, 30, 20];
    let j = 0;
    let last: number | undefined;
    for (const rtt of rtts) {
      m.update({ ...base, latestRttMs: rtt });
      // An unchanged value is the same sample read twice, not a new one.
      if (last !== undefined && rtt !== last) j += (Math.abs(rtt - last) - j) / 16;
      if (last === undefined || rtt !== last) last = rtt;
      clock.advance(200);
    }
    expect(m.jitterMs).toBeCloseTo(j, 10);
    // Four new samples, each 10 ms from the last (the repeated 30s are one sample).
    expect(m.jitterMs).toBeCloseTo(10 * (1 - (15 / 16) ** 4), 10);
  });

  it('converges to the spread of a steady alternation', () => {
    const clock = new ManualClock();
    const m = new LinkMetrics({ clock });
    for (let i = 0; i < 400; i++) {
      m.update({ ...base, latestRttMs: i % 2 === 0 ? 10 : 14 });
      clock.advance(100);
    }
    expect(m.jitterMs).toBeCloseTo(4, 3);
  });

  it('measures loss over a sliding window, so it recovers after a burst', () => {
    const clock = new ManualClock();
    const m = new LinkMetrics({ clock, lossWindowMs: 10_000 });
    let sent = 0;
    let lost = 0;
    // 5 s with 20% loss, 100 packets a second.
    for (let t = 0; t < 50; t++) {
      sent += 10;
      lost += 2;
      m.update({ ...base, sent, lost });
      clock.advance(100);
    }
    expect(m.lossRate).toBeCloseTo(0.2, 2);
    // 12 s without loss: the burst has left the window.
    for (let t = 0; t < 120; t++) {
      sent += 10;
      m.update({ ...base, sent, lost });
      clock.advance(100);
    }
    expect(m.lossRate).toBe(0);
    expect(m.lossBasisPackets).toBeGreaterThanOrEqual(1000);
  });

  it('keeps the last loss rate while nothing is sent (unknown is not zero)', () => {
    const clock = new ManualClock();
    const m = new LinkMetrics({ clock, lossWindowMs: 1000 });
    m.update({ ...base, sent: 0, lost: 0 });
    clock.advance(500);
    m.update({ ...base, sent: 10, lost: 5 });
    clock.advance(5000);
    m.update({ ...base, sent: 10, lost: 5 });
    expect(m.lossRate).toBe(0.5);
  });

  it('reports throughput in bytes per second in each direction over the rate window', () => {
    const clock = new ManualClock();
    const m = new LinkMetrics({ clock, rateWindowMs: 1000 });
    let up = 0;
    let down = 0;
    for (let t = 0; t < 30; t++) {
      up += 25_000; // 125 kB/s at 5 reads a second
      down += 50_000;
      m.update({ ...base, bytesSent: up, bytesReceived: down });
      clock.advance(200);
    }
    expect(m.upBps).toBeCloseTo(125_000, -2);
    expect(m.downBps).toBeCloseTo(250_000, -2);
  });

  it('prefers jitterMs and lossRate from core/paths when the summary has them', () => {
    const m = new LinkMetrics({ clock: new ManualClock() });
    m.update({ ...base, jitterMs: 3.5, lossRate: 0.02, sent: 100, lost: 50 });
    expect(m.jitterMs).toBe(3.5);
    expect(m.lossRate).toBe(0.02);
  });
});
