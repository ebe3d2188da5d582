import { describe, expect, it } from 'vitest';
import { CarefulResume } from '../../../core/paths/careful-resume.js';
import { PathMetricsCache } from '../../../core/paths/path-metrics-cache.js';
import { PathRecovery } from '../../../core/paths/path-recovery.js';
import { ManualClock } from '../../../core/util/clock.js';
import { BraidError } from '../../../core/util/errors.js';

const MSS = 1200;
const IW = 10 * MSS;
const saved = { cwnd: 100 * MSS, rttMs: 20 };

describe('CarefulResume (RFC 9959) phases', () => {
  it('jumps to half the saved window once the initial window is acknowledged', () => {
    const cr = new CarefulResume(saved);
    expect(cr.phase).toBe('reconnaissance');
    cr.onPacketAcked(0, IW - MSS);
    expect(cr.maybeJump(20, IW, IW)).toBeUndefined();
    cr.onPacketAcked(1, MSS);
    expect(cr.maybeJump(22, 2 * IW, IW)).toBe(50 * MSS);
    expect(cr.phase).toBe('unvalidated');
    expect(cr.unvalidated).toBe(true);
    expect(cr.jumps).toBe(1);
  });

  it('declines when the RTT says the path changed, the jump is no gain, or a loss came first', () => {
    const rtt = (ms: number): CarefulResume => {
      const cr = new CarefulResume(saved);
      cr.onPacketAcked(0, IW);
      cr.maybeJump(ms, IW, IW);
      return cr;
    };
    // RFC 9959 §4.3: within (½, 10) × the saved RTT.
    expect(rtt(10).declined).toBe('rtt');
    expect(rtt(200).declined).toBe('rtt');
    expect(rtt(11).phase).toBe('unvalidated');
    expect(rtt(199).phase).toBe('unvalidated');
    const small = new CarefulResume(saved);
    small.onPacketAcked(0, IW);
    expect(small.maybeJump(20, 60 * MSS, IW)).toBeUndefined();
    expect(small.declined).toBe('small');
    const lost = new CarefulResume(saved);
    expect(lost.onCongestion()).toBeUndefined();
    expect(lost.declined).toBe('loss');
    expect(lost.phase).toBe('normal');
    // Figures that are not finite and positive are no seed.
    expect(new CarefulResume({ cwnd: NaN, rttMs: 20 }).phase).toBe('normal');
    expect(new CarefulResume({ cwnd: 1000, rttMs: 0 }).phase).toBe('normal');
    expect(new CarefulResume(undefined).phase).toBe('normal');
  });

  it('validates the jump over the packets sent under it, or retreats to half of what was delivered', () => {
    const jumped = (): CarefulResume => {
      const cr = new CarefulResume(saved);
      cr.onPacketAcked(9, IW);
      cr.maybeJump(20, 2 * IW, IW);
      for (let pn = 20; pn < 70; pn++) cr.onSent(pn);
      return cr;
    };
    const ok = jumped();
    // Packets from before the jump: still unvalidated.
    ok.onPacketAcked(12, MSS);
    expect(ok.onAckProcessed(60 * MSS)).toBeUndefined();
    expect(ok.phase).toBe('unvalidated');
    // The first unvalidated packet: validating, the window is what is in flight.
    ok.onPacketAcked(20, MSS);
    expect(ok.onAckProcessed(49 * MSS)).toBe(49 * MSS);
    expect(ok.phase).toBe('validating');
    expect(ok.unvalidated).toBe(false);
    ok.onSent(70); // sent in validating: not a packet of the jump
    ok.onPacketAcked(68, MSS);
    expect(ok.onAckProcessed(40 * MSS)).toBeUndefined();
    expect(ok.phase).toBe('validating');
    ok.onPacketAcked(69, MSS);
    ok.onAckProcessed(40 * MSS);
    expect(ok.phase).toBe('normal');
    expect(ok.retreats).toBe(0);

    // Delivered since the jump covers the flight: resume ends there, at that window.
    const quick = jumped();
    quick.onPacketAcked(20, 30 * MSS);
    expect(quick.onAckProcessed(10 * MSS)).toBe(2 * IW + 30 * MSS);
    expect(quick.phase).toBe('normal');

    const lossy = jumped();
    lossy.onPacketAcked(20, 10 * MSS);
    lossy.onAckProcessed(40 * MSS);
    // PipeSize: the window at the jump (2 IW) plus what was acknowledged since (10 MSS).
    expect(lossy.onCongestion()).toBe((2 * IW + 10 * MSS) / 2);
    expect(lossy.phase).toBe('retreat');
    expect(lossy.retreats).toBe(1);
    // One retreat per jump; resume is over once the jump's last packet is acknowledged.
    expect(lossy.onCongestion()).toBeUndefined();
    lossy.onPacketAcked(69, MSS);
    lossy.onAckProcessed(0);
    expect(lossy.phase).toBe('normal');
  });
});

describe('PathRecovery with Careful Resume', () => {
  const recovery = (congestion: 'cubic' | 'bbr' = 'cubic') => {
    const clock = new ManualClock(1000);
    const r = new PathRecovery<number>({ kind: 'udp', maxDatagramSize: MSS, congestion }, clock);
    return { clock, r };
  };
  /** Sends `n` packets, then acknowledges them (but those in `lose`) `rtt` ms later. */
  const round = (
    clock: ManualClock,
    r: PathRecovery<number>,
    n: number,
    rtt = 20,
    lose: number[] = [],
  ): void => {
    const first = r.upcomingPacketNumber;
    for (let i = 0; i < n; i++) {
      const pn = r.nextPacketNumber();
      r.onPacketSent(pn, MSS, true, pn);
    }
    clock.advance(rtt);
    const ranges = [];
    let hi = first + n - 1;
    for (const l of [...lose].sort((a, b) => b - a)) {
      if (hi > first + l) ranges.push({ first: first + l + 1, last: hi });
      hi = first + l - 1;
    }
    if (hi >= first) ranges.push({ first, last: hi });
    const res = r.onAck(ranges, 0);
    if (res instanceof BraidError) throw res;
  };

  it('jumps after one round at the initial window and caps slow start at the saved window', () => {
    const { clock, r } = recovery();
    r.seedResume(saved);
    round(clock, r, 10);
    expect(r.cwnd).toBe(50 * MSS);
    expect(r.ssthresh).toBe(100 * MSS);
    expect(r.resume.phase).toBe('unvalidated');
    // Without a seed the same round only doubles the window (slow start).
    const plain = recovery();
    round(plain.clock, plain.r, 10);
    expect(plain.r.cwnd).toBe(20 * MSS);
    // The jump is paced over a round trip: 50 packets take about 20 ms, not 10.
    const start = clock.now();
    let t = start;
    for (let i = 0; i < 50; i++) {
      t = Math.max(t, r.nextSendTime(MSS, t));
      const pn = r.nextPacketNumber();
      clock.set(t);
      r.onPacketSent(pn, MSS, true, pn);
    }
    expect(t - start).toBeGreaterThan(14);
  });

  it('holds the window while the jump is unvalidated, then grows by slow start up to the saved window', () => {
    const { clock, r } = recovery();
    r.seedResume(saved);
    round(clock, r, 10);
    round(clock, r, 50);
    // One ACK for the whole jump: what it delivered (PipeSize) covers the flight, so
    // resume ends at that window; the jump's own ACKs did not grow it.
    expect(r.resume.phase).toBe('normal');
    expect(r.cwnd).toBe((20 + 50) * MSS);
    for (let k = 0; k < 3; k++) round(clock, r, Math.floor(r.cwnd / MSS));
    expect(r.cwnd).toBeGreaterThanOrEqual(100 * MSS);
    expect(r.cwnd).toBeLessThan(103 * MSS);
  });

  it('retreats to half of what the path delivered when the jump loses a packet', () => {
    const { clock, r } = recovery();
    r.seedResume(saved);
    round(clock, r, 10);
    // The jump's round: its 50 packets lose 4 in a row (RFC 9002 packet threshold).
    round(clock, r, 50, 20, [10, 11, 12, 13]);
    expect(r.resume.retreats).toBe(1);
    // PipeSize = the window at the jump (20) + the 46 packets acknowledged since.
    expect(r.cwnd).toBe(Math.min(((20 + 46) * MSS) / 2, 0.7 * 50 * MSS));
    expect(r.ssthresh).toBe(r.cwnd);
  });

  it('does not jump when the first RTT is far from the saved one, under BBR, or once it sent', () => {
    const { clock, r } = recovery();
    r.seedResume(saved);
    round(clock, r, 10, 300);
    expect(r.resume.declined).toBe('rtt');
    expect(r.cwnd).toBe(20 * MSS);
    const bbr = recovery('bbr').r;
    bbr.seedResume(saved);
    expect(bbr.resume.phase).toBe('normal');
    const late = recovery();
    round(late.clock, late.r, 2);
    late.r.seedResume(saved);
    expect(late.r.resume.phase).toBe('normal');
  });

  it('leaves its capacity and min RTT for the next path, under CUBIC and under BBR', () => {
    const { clock, r } = recovery();
    expect(r.learnedResume).toBeUndefined();
    for (let k = 0; k < 3; k++) round(clock, r, Math.floor(r.cwnd / MSS));
    round(clock, r, Math.floor(r.cwnd / MSS), 20, [0, 1, 2, 3]);
    expect(r.learnedResume).toEqual({ cwnd: r.learnedSsthresh, rttMs: 20 });
    const b = recovery('bbr');
    for (let k = 0; k < 8; k++) round(b.clock, b.r, Math.floor(b.r.cwnd / MSS));
    const model = b.r.bbrModel!;
    expect(b.r.learnedResume!.cwnd).toBeCloseTo(
      (0.85 * 2 * model.bandwidth * model.minRtt) / 1000,
      3,
    );
    expect(b.r.learnedResume!.rttMs).toBe(20);
  });
});

describe('PathMetricsCache: Careful Resume figures', () => {
  const key = PathMetricsCache.key('udp', '10.0.0.1', '10.0.0.2');
  it('keeps them with the threshold, merges a lower capacity halfway and forgets them with it', () => {
    const c = new PathMetricsCache({ ttlMs: 1000 });
    c.record(key, { resume: { cwnd: 200_000, rttMs: 20 } }, 0);
    expect(c.ssthresh(key, 0)).toBeUndefined();
    expect(c.resume(key, 0)).toEqual({ cwnd: 200_000, rttMs: 20 });
    c.record(key, { ssthresh: 90_000, resume: { cwnd: 100_000, rttMs: 25 } }, 10);
    expect(c.resume(key, 10)).toEqual({ cwnd: 150_000, rttMs: 25 });
    expect(c.ssthresh(key, 10)).toBe(90_000);
    // A path that learned only a threshold keeps the resume figures there were.
    c.record(key, { ssthresh: 95_000 }, 20);
    expect(c.resume(key, 20)).toEqual({ cwnd: 150_000, rttMs: 25 });
    c.record(key, { resume: { cwnd: Infinity, rttMs: 20 } }, 30);
    expect(c.resume(key, 30)).toEqual({ cwnd: 150_000, rttMs: 25 });
    expect(c.resume(key, 1031)).toBeUndefined();
    expect(c.size).toBe(0);
  });
});
