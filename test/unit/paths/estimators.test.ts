import { describe, expect, it } from 'vitest';
import {
  JitterEstimator,
  LossWindow,
  PathEstimator,
  TcpProgressMonitor,
} from '../../../core/paths/estimators.js';
import { SlidingSum, WindowedMaxFilter } from '../../../core/paths/windowed-filter.js';
import { BraidError } from '../../../core/util/errors.js';
import { seededRandom } from '../../support/impaired-subflow.js';

describe('WindowedMaxFilter (Nichols, as BBR)', () => {
  it('tracks the maximum and forgets it once it is older than the window', () => {
    const f = new WindowedMaxFilter(1000);
    f.update(10, 0);
    f.update(50, 100);
    f.update(20, 200);
    expect(f.value).toBe(50);
    // Lower samples keep coming; the 50 ages out after the window.
    for (let t = 300; t <= 1200; t += 100) f.update(20, t);
    expect(f.value).toBe(20);
  });

  it('stays within the sub-window granularity of a brute-force windowed maximum', () => {
    const random = seededRandom(7);
    const f = new WindowedMaxFilter(1000);
    const samples: Array<{ t: number; v: number }> = [];
    let worst = 0;
    for (let t = 0; t < 60_000; t += 10 + random() * 40) {
      const v = 100 + 50 * Math.sin(t / 3000) + random() * 20;
      samples.push({ t, v });
      f.update(v, t);
      // Three samples are an approximation: the answer is never below the maximum of
      // the last quarter window nor above that of the last 1.5 windows.
      let recent = 0;
      let exact = 0;
      let loose = 0;
      for (const s of samples) {
        if (t - s.t <= 250) recent = Math.max(recent, s.v);
        if (t - s.t <= 1000) exact = Math.max(exact, s.v);
        if (t - s.t <= 1500) loose = Math.max(loose, s.v);
      }
      expect(f.value).toBeGreaterThanOrEqual(recent - 1e-9);
      expect(f.value).toBeLessThanOrEqual(loose + 1e-9);
      worst = Math.max(worst, (exact - f.value) / exact);
    }
    // And close to the exact windowed maximum all the same.
    expect(worst).toBeLessThan(0.2);
  });

  it('ignores non-finite samples instead of poisoning the maximum', () => {
    const f = new WindowedMaxFilter(1000);
    f.update(5, 0);
    f.update(NaN, 10);
    f.update(Infinity, 20);
    expect(f.value).toBe(5);
  });
});

describe('SlidingSum', () => {
  it('sums what was added over the last window and drops older buckets', () => {
    const s = new SlidingSum(1000, 10);
    s.add(0, 5);
    s.add(550, 3);
    expect(s.sum(900)).toBe(8);
    expect(s.sum(1050)).toBe(3);
    expect(s.sum(5000)).toBe(0);
    s.add(5000, 1);
    expect(s.sum(5000)).toBe(1);
  });

  it('refuses a window that is not positive', () => {
    expect(() => new SlidingSum(0)).toThrow(RangeError);
  });
});

describe('JitterEstimator (RFC 3550 §6.4.1)', () => {
  it('follows J += (|D| - J)/16 on transit differences, whatever the clock offset', () => {
    const a = new JitterEstimator();
    const b = new JitterEstimator();
    const transits = [40, 45, 38, 50, 41, 44];
    let expected = 0;
    for (let i = 0; i < transits.length; i++) {
      const send = i * 20;
      a.onArrival(send, send + transits[i]!);
      // Same path, the receiver's clock 1e6 ms ahead: same jitter.
      b.onArrival(send, send + transits[i]! + 1e6);
      if (i > 0) expected += (Math.abs(transits[i]! - transits[i - 1]!) - expected) / 16;
    }
    expect(a.jitter).toBeCloseTo(expected, 12);
    expect(b.jitter).toBeCloseTo(expected, 9);
  });

  it('converges to the mean absolute transit difference of a steady process', () => {
    const random = seededRandom(3);
    const j = new JitterEstimator();
    // Transit uniform in [40, 50]: E|X - Y| = 10/3.
    for (let i = 0; i < 20_000; i++) j.onTransit(40 + 10 * random());
    expect(j.jitter).toBeGreaterThan(2.8);
    expect(j.jitter).toBeLessThan(3.9);
  });

  it('stays at zero on a constant-delay path and refuses non-finite input', () => {
    const j = new JitterEstimator();
    for (let i = 0; i < 100; i++) j.onArrival(i * 10, i * 10 + 30);
    j.onArrival(NaN, 5);
    expect(j.jitter).toBe(0);
    expect(j.rejected).toBe(1);
  });
});

describe('LossWindow', () => {
  it('counts loss over the last N packets', () => {
    const w = new LossWindow({ packets: 100, windowMs: 1000 });
    for (let i = 0; i < 90; i++) w.onDelivered(0);
    w.onLost(0, 10);
    expect(w.packetRate(0)).toBeCloseTo(0.1, 12);
    // 100 more good packets push the losses out of the packet window.
    w.onDelivered(0, 100);
    expect(w.packetRate(0)).toBe(0);
  });

  it('prefers the time window when it holds enough packets, else the last N packets', () => {
    const w = new LossWindow({ packets: 1000, windowMs: 1000, minSamples: 20 });
    // An old lossy period...
    w.onDelivered(0, 80);
    w.onLost(0, 20);
    // ...then a clean recent second.
    for (let t = 5000; t < 6000; t += 10) w.onDelivered(t);
    expect(w.rate(5999)).toBe(0);
    expect(w.packetRate(5999)).toBeCloseTo(20 / 200, 12);
    // The path falls idle: the time window empties, and the last packets speak.
    expect(w.rate(60_000)).toBeCloseTo(0.1, 12);
    expect(w.samples(60_000)).toBe(200);
  });

  it('lets outcomes older than maxAgeMs go, so that a shut-out path is judged by its probes', () => {
    const w = new LossWindow({ packets: 1000, windowMs: 10_000, minSamples: 20 });
    // 30 % loss over 1000 data packets: the loss stage shuts the path out...
    for (let i = 0; i < 1000; i++) {
      if (i % 10 < 3) w.onLost(i);
      else w.onDelivered(i);
    }
    expect(w.rate(1000)).toBeCloseTo(0.3, 12);
    // ...and it carries one idle probe a second from then on, each one answered.
    let t = 1000;
    for (; t < 60_000; t += 1000) w.onDelivered(t);
    // Within the minute the data packets' figure still stands (fewer than 20 probes
    // in any 10 s), diluted only by the probes among the last 1000 outcomes.
    expect(w.rate(t)).toBeGreaterThan(0.25);
    for (; t < 70_000; t += 1000) w.onDelivered(t);
    // A minute after the last data packet only the probes are left: no loss.
    expect(w.rate(t)).toBe(0);
    expect(w.samples(t)).toBe(60);
    // A path that went quiet with nothing probing it keeps its newest 20 outcomes.
    const quiet = new LossWindow({ packets: 1000, windowMs: 10_000, minSamples: 20 });
    for (let i = 0; i < 100; i++) {
      if (i % 2 === 0) quiet.onLost(i);
      else quiet.onDelivered(i);
    }
    expect(quiet.rate(1_000_000)).toBeCloseTo(0.5, 12);
    expect(quiet.samples(1_000_000)).toBe(20);
  });

  it('estimates a random loss rate within a few tenths of a percent', () => {
    const random = seededRandom(11);
    const w = new LossWindow({ packets: 5000, windowMs: 10_000 });
    for (let i = 0; i < 5000; i++) {
      if (random() < 0.02) w.onLost(i);
      else w.onDelivered(i);
    }
    expect(w.rate(5000)).toBeGreaterThan(0.015);
    expect(w.rate(5000)).toBeLessThan(0.025);
  });

  it('rejects a window that is not positive with a config error', () => {
    try {
      new LossWindow({ packets: 0 });
      expect.unreachable();
    } catch (err) {
      expect((err as BraidError).code).toBe('BRAID_ERR_CONFIG');
    }
  });
});

describe('TcpProgressMonitor', () => {
  it('measures ACK progress and the queueing delay of unsent bytes', () => {
    const m = new TcpProgressMonitor({ windowMs: 1000 });
    for (let t = 0; t < 1000; t += 10) m.onAcked(t, 1000); // 100 kB/s
    m.sample(999, 50_000, 20_000);
    expect(m.ackRate(999)).toBeCloseTo(100_000, -3);
    expect(m.queueDelayMs(999)).toBeCloseTo(500, -1);
  });

  it('signals a stall when data waits and ACKs stop, and not on an idle socket', () => {
    const m = new TcpProgressMonitor({ minStallMs: 200 });
    m.sample(0, 0, 0);
    expect(m.stalled(10_000, 50, 10)).toBe(false);
    // Data starts waiting at 10 s: the stall clock starts then, not at time 0.
    m.sample(10_000, 4000, 8000);
    expect(m.stalled(10_100, 50, 10)).toBe(false);
    expect(m.stalled(10_199, 50, 10)).toBe(false);
    expect(m.stalled(10_200, 50, 10)).toBe(true);
    m.onAcked(10_250, 8000);
    expect(m.stalled(10_300, 50, 10)).toBe(false);
    // Long RTT: the timeout is 3·srtt + 4·rttvar.
    expect(m.stalled(10_250 + 3 * 300 + 4 * 50 - 1, 300, 50)).toBe(false);
    expect(m.stalled(10_250 + 3 * 300 + 4 * 50, 300, 50)).toBe(true);
  });
});

describe('PathEstimator', () => {
  const recovery = (over: Partial<Record<string, number | boolean>> = {}) => ({
    srtt: 333,
    rttvar: 166,
    latestRtt: 0,
    hasRttSample: false,
    deliveryRate: 0,
    cwnd: 12_000,
    bytesInFlight: 0,
    bytesAcked: 0,
    ...over,
  });

  it('uses a scoreboard seed until the path measures for itself', () => {
    const e = new PathEstimator({ kind: 'udp' });
    e.seed({
      srttMs: 20,
      rttvarMs: 4,
      deliveryRate: 5e6,
      lossRate: 0.01,
      jitterMs: 2,
      samples: 500,
    });
    const r0 = recovery();
    expect(e.srtt(r0)).toBe(20);
    expect(e.rttvar(r0)).toBe(4);
    expect(e.deliveryRate(r0)).toBe(5e6);
    expect(e.jitterMs(r0)).toBe(2);
    expect(e.lossRate(0)).toBeCloseTo(0.01, 12);
    const r1 = recovery({ srtt: 30, rttvar: 6, hasRttSample: true, deliveryRate: 1e6 });
    e.onAck(10, r1, 100, 0, 30);
    expect(e.srtt(r1)).toBe(30);
    expect(e.deliveryRate(r1)).toBe(1e6);
    // 100 clean packets outweigh the seeded 1 %.
    expect(e.lossRate(10)).toBe(0);
  });

  it('never rates a path below its congestion window per RTT', () => {
    const e = new PathEstimator({ kind: 'udp' });
    const r = recovery({ srtt: 10, hasRttSample: true, deliveryRate: 1000, cwnd: 100_000 });
    expect(e.deliveryRate(r)).toBe(10_000_000);
  });

  it('divides the window by the newest RTT when a queue has pushed it past srtt', () => {
    const e = new PathEstimator({ kind: 'udp' });
    // Slow start on 12 Mbit/s, 45 ms: 158 KB in the window, srtt still 68 ms, the newest
    // sample 95 ms behind the full queue. 158 KB / 68 ms would claim 18.6 Mbit/s.
    const r = recovery({
      srtt: 68,
      latestRtt: 95,
      hasRttSample: true,
      deliveryRate: 1.4e6,
      cwnd: 158_000,
    });
    expect(e.deliveryRate(r)).toBeCloseTo(158_000 / 0.095, 0);
    // Before the first sample latestRtt means nothing.
    expect(e.deliveryRate(recovery({ latestRtt: 5000 }))).toBeCloseTo(12_000 / 0.333, 0);
  });

  it('feeds a TCP path its ACK progress from the recovery counter, and keeps inbound jitter apart', () => {
    const e = new PathEstimator({ kind: 'tcp' });
    const r = recovery({ srtt: 40, hasRttSample: true, deliveryRate: 1e5 });
    e.onAck(0, { ...r, bytesAcked: 50_000 }, 40, 0, 40);
    e.onAck(500, { ...r, bytesAcked: 150_000 }, 80, 0, 40);
    expect(e.tcp!.ackedBytes).toBe(150_000);
    e.onProbeReceived(1000, 1030);
    e.onProbeReceived(2000, 2040);
    expect(e.inboundJitter.jitter).toBeCloseTo(10 / 16, 12);
    expect(e.jitter.jitter).toBe(0);
  });

  it('reports figures for the scoreboard only once it has an RTT sample', () => {
    const e = new PathEstimator({ kind: 'tcp' });
    expect(e.tcp).toBeDefined();
    expect(e.score(0, recovery())).toBeUndefined();
    const r = recovery({ srtt: 40, rttvar: 5, hasRttSample: true, deliveryRate: 2e6 });
    e.onAck(0, r, 10, 0, 40);
    e.onAck(1, r, 10, 0, 44);
    expect(e.score(1, r)).toEqual({
      srttMs: 40,
      rttvarMs: 5,
      deliveryRate: 2e6,
      lossRate: 0,
      jitterMs: 4 / 16,
      samples: 20,
    });
  });
});
