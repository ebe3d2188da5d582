import { describe, expect, it } from 'vitest';
import {
  BBR_MIN_RTT_WINDOW_MS,
  BBR_PROBE_BW_GAINS,
  BBR_PROBE_RTT_MS,
  BBR_STARTUP_GAIN,
  Bbr,
} from '../../../core/paths/bbr.js';

const MSS = 1200;
const INITIAL_CWND = 10 * MSS;

/**
 * Drives a Bbr with ACKs by hand: each `round()` is one ACK for a packet sent after the
 * previous round ended, so it opens a new round (rounds are counted by delivered bytes).
 */
class Driver {
  now = 1000;
  delivered = 0;
  readonly bbr: Bbr;
  constructor(random: () => number = () => 0.5) {
    this.bbr = new Bbr({ mss: MSS, initialCwnd: INITIAL_CWND, random }, this.now);
  }
  ack(o: {
    dt: number;
    rate?: number;
    rtt?: number;
    inFlight: number;
    acked?: number;
    newRound?: boolean;
    appLimited?: boolean;
    lostPackets?: number;
    /** In flight when the lost packets were sent (default: inFlight). */
    lostTxInFlight?: number;
  }): void {
    this.now += o.dt;
    for (let i = 0; i < (o.lostPackets ?? 0); i++)
      this.bbr.onLoss(MSS, o.lostTxInFlight ?? o.inFlight);
    const acked = o.acked ?? 10 * MSS;
    // A packet sent before the round's end carries an older `delivered`.
    const prior = o.newRound === false ? this.delivered - 1e9 : this.delivered;
    this.delivered += acked;
    this.bbr.onAck({
      now: this.now,
      ackedBytes: acked,
      delivered: this.delivered,
      priorDelivered: prior,
      rate: o.rate,
      appLimited: o.appLimited ?? false,
      rtt: o.rtt,
      priorInFlight: o.inFlight,
      inFlight: o.inFlight,
    });
  }
  /** On in probe-bw (at 400 bytes/ms, 50 ms) until the probe-up phase begins. */
  toProbeUp(): void {
    for (let i = 0; i < 20 && this.bbr.pacingGain !== 1.25; i++)
      this.ack({ dt: 51, rate: 400, rtt: 50, inFlight: 400 * 50 });
  }
  /** A round of 70 packets losing `lostPackets` sent with `txInFlight`, judged by the next round's first ACK. */
  lossyRound(lostPackets: number, txInFlight: number): void {
    this.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 400 * 50, acked: 10 * MSS });
    this.ack({
      dt: 1,
      rate: 400,
      rtt: 50,
      inFlight: 400 * 50,
      acked: 60 * MSS,
      newRound: false,
      lostPackets,
      lostTxInFlight: txInFlight,
    });
    this.ack({ dt: 1, rate: 400, rtt: 50, inFlight: 400 * 50, acked: MSS });
  }
  /** Startup at `rate` until the pipe is full, then drain down to one BDP: probe-bw. */
  toProbeBw(rate: number, rtt: number): void {
    for (let i = 0; i < 8 && this.bbr.state === 'startup'; i++)
      this.ack({ dt: rtt, rate, rtt, inFlight: rate * rtt });
    this.ack({ dt: rtt, rate, rtt, inFlight: rate * rtt });
  }
}

describe('BBR: startup and drain', () => {
  it('paces at 2.77 × bandwidth while the bandwidth grows, and leaves startup after three rounds without 25% growth', () => {
    const d = new Driver();
    expect(d.bbr.state).toBe('startup');
    for (const rate of [100, 200, 400]) d.ack({ dt: 50, rate, rtt: 50, inFlight: rate * 50 });
    expect(d.bbr.state).toBe('startup');
    expect(d.bbr.pacingGain).toBeCloseTo(BBR_STARTUP_GAIN, 6);
    expect(d.bbr.pacingRate).toBeCloseTo(BBR_STARTUP_GAIN * 400 * 0.99, 6);
    // 24% growth is not enough; three such rounds end startup.
    d.ack({ dt: 50, rate: 496, rtt: 50, inFlight: 2 * 400 * 50 });
    d.ack({ dt: 50, rate: 496, rtt: 50, inFlight: 2 * 400 * 50 });
    expect(d.bbr.state).toBe('startup');
    d.ack({ dt: 50, rate: 496, rtt: 50, inFlight: 2 * 400 * 50 });
    expect(d.bbr.fullBwReached).toBe(true);
    expect(d.bbr.state).toBe('drain');
    expect(d.bbr.pacingGain).toBeCloseTo(1 / BBR_STARTUP_GAIN, 6);
    expect(d.bbr.pacingRate).toBeLessThan(496);
  });

  it('does not judge the pipe full on app-limited rounds', () => {
    const d = new Driver();
    d.ack({ dt: 50, rate: 100, rtt: 50, inFlight: 5000 });
    for (let i = 0; i < 6; i++)
      d.ack({ dt: 50, rate: 100, rtt: 50, inFlight: 5000, appLimited: true });
    expect(d.bbr.state).toBe('startup');
  });

  it('drains until inflight is down to one BDP, then probes bandwidth', () => {
    const d = new Driver();
    for (let i = 0; i < 5; i++) d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 40_000 });
    expect(d.bbr.state).toBe('drain');
    d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 30_000 });
    expect(d.bbr.state).toBe('drain');
    d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 400 * 50 });
    expect(d.bbr.state).toBe('probe-bw');
  });
});

describe('BBR: probe-bandwidth', () => {
  it('cycles gains 1.25, 0.75, then 1 six times, one min RTT a phase, never starting in the drain-down phase', () => {
    for (const r of [0, 0.3, 0.99]) {
      const d = new Driver(() => r);
      d.toProbeBw(400, 50);
      expect(d.bbr.state).toBe('probe-bw');
      const bdp = 400 * 50;
      const gains: number[] = [d.bbr.pacingGain];
      expect(d.bbr.pacingGain).not.toBe(0.75);
      for (let i = 0; i < 40 && gains.length < 17; i++) {
        // Probing up reaches 1.25 BDP in flight; the drain-down phase returns to 1 BDP.
        const g = d.bbr.pacingGain;
        d.ack({ dt: 51, rate: 400, rtt: 50, inFlight: g * bdp });
        if (d.bbr.pacingGain !== g || gains.length === 0) gains.push(d.bbr.pacingGain);
        else if (g === 1) gains.push(1);
      }
      const start = gains.indexOf(1.25);
      expect(gains.slice(start, start + 8)).toEqual([...BBR_PROBE_BW_GAINS]);
    }
  });

  it('keeps probing up until the pipe holds 1.25 BDP', () => {
    const d = new Driver(() => 0.99);
    d.toProbeBw(400, 50);
    while (d.bbr.pacingGain !== 1.25) d.ack({ dt: 51, rate: 400, rtt: 50, inFlight: 400 * 50 });
    d.ack({ dt: 51, rate: 400, rtt: 50, inFlight: 400 * 50 * 1.1 });
    expect(d.bbr.pacingGain).toBe(1.25);
    d.ack({ dt: 51, rate: 400, rtt: 50, inFlight: 400 * 50 * 1.25 });
    // The probe ends at once (and, with one BDP in flight, so does its drain-down).
    expect(d.bbr.pacingGain).toBeLessThan(1.25);
  });

  it('sets the window to cwnd_gain (2) × BDP plus room for ACK bunching', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    for (let i = 0; i < 30; i++) d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 400 * 50 });
    const bdp = 400 * 50;
    expect(d.bbr.bdp(1)).toBeCloseTo(bdp, 6);
    expect(d.bbr.cwnd).toBeGreaterThanOrEqual(2 * bdp);
    // One ACK's worth of aggregation and three packets of quantisation at most.
    expect(d.bbr.cwnd).toBeLessThanOrEqual(2 * bdp + 10 * MSS + 3 * MSS);
    expect(d.bbr.pacingRate).toBeCloseTo(d.bbr.pacingGain * 400 * 0.99, 6);
  });

  it('takes an app-limited sample only when it raises the estimate', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    d.ack({ dt: 50, rate: 100, rtt: 50, inFlight: 5000, appLimited: true });
    expect(d.bbr.bw).toBe(400);
    d.ack({ dt: 50, rate: 500, rtt: 50, inFlight: 5000, appLimited: true });
    expect(d.bbr.bw).toBe(500);
  });

  it('forgets a bandwidth maximum after ten rounds, so it follows a slower link', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    for (let i = 0; i < 12; i++) d.ack({ dt: 50, rate: 200, rtt: 50, inFlight: 200 * 50 });
    expect(d.bbr.bw).toBe(200);
  });

  it('counts rounds by delivered bytes, not by ACKs', () => {
    const d = new Driver();
    d.ack({ dt: 50, rate: 100, rtt: 50, inFlight: 5000 });
    const rounds = d.bbr.roundCount;
    for (let i = 0; i < 20; i++)
      d.ack({ dt: 1, rate: 100, rtt: 50, inFlight: 5000, newRound: false });
    expect(d.bbr.roundCount).toBe(rounds);
    d.ack({ dt: 1, rate: 100, rtt: 50, inFlight: 5000 });
    expect(d.bbr.roundCount).toBe(rounds + 1);
  });
});

describe('BBR: probe-RTT', () => {
  it('after 10 s without a lower RTT, holds the window at 4 packets for 200 ms and a round, then restores it', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    for (let i = 0; i < 20; i++) d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 400 * 50 });
    // RTTs above the minimum for the rest of the window.
    const until = d.now + BBR_MIN_RTT_WINDOW_MS - 100;
    while (d.now < until) d.ack({ dt: 50, rate: 400, rtt: 60, inFlight: 400 * 50 });
    expect(d.bbr.state).toBe('probe-bw');
    d.ack({ dt: 200, rate: 400, rtt: 60, inFlight: 400 * 50 });
    expect(d.bbr.state).toBe('probe-rtt');
    expect(d.bbr.cwnd).toBe(4 * MSS);
    expect(d.bbr.pacingGain).toBe(1);
    // The window holds until inflight is down to 4 packets, then for 200 ms.
    d.ack({ dt: 20, rtt: 50, inFlight: 4 * MSS, acked: MSS, newRound: false });
    const drainedAt = d.now;
    while (d.now < drainedAt + BBR_PROBE_RTT_MS - 20) {
      d.ack({ dt: 20, rtt: 50, inFlight: 4 * MSS, acked: MSS });
      expect(d.bbr.state).toBe('probe-rtt');
      expect(d.bbr.cwnd).toBe(4 * MSS);
    }
    d.ack({ dt: 40, rtt: 50, inFlight: 4 * MSS, acked: MSS });
    expect(d.bbr.state).toBe('probe-bw');
    // Back to the model's window (2 BDP and then some), not left at 4 packets.
    expect(d.bbr.cwnd).toBeGreaterThanOrEqual(2 * 400 * 50);
    expect(d.bbr.minRtt).toBe(50);
  });

  it('does not probe RTT while fresh samples keep matching the minimum', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    const until = d.now + 3 * BBR_MIN_RTT_WINDOW_MS;
    while (d.now < until) {
      d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 400 * 50 });
      expect(d.bbr.state).not.toBe('probe-rtt');
    }
  });
});

describe('BBR: loss', () => {
  it('ignores random loss below 2% of a round: no bound, no smaller window', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    for (let i = 0; i < 10; i++) d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 400 * 50 });
    const cwnd = d.bbr.cwnd;
    // 1% of 100 packets a round, every round.
    for (let i = 0; i < 50; i++)
      d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 400 * 50, acked: 100 * MSS, lostPackets: 1 });
    expect(d.bbr.inflightHi).toBe(Infinity);
    expect(d.bbr.lossyRounds).toBe(0);
    expect(d.bbr.cwnd).toBeGreaterThanOrEqual(cwnd);
  });

  it('ignores a lossy round with fewer than three losses (too small a sample)', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 20_000, acked: 20 * MSS, lostPackets: 2 });
    d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 20_000, acked: 20 * MSS });
    expect(d.bbr.inflightHi).toBe(Infinity);
  });

  it('bounds inflight after a probing round losing more than 2% at what was in flight when the losses went out, keeping one BDP and the pacing rate', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    d.toProbeUp();
    const bdp = 400 * 50;
    // 4 of 71 packets lost, sent with 1.2 BDP in flight: the probe went too far.
    d.lossyRound(4, 1.2 * bdp);
    expect(d.bbr.lossyRounds).toBe(1);
    // The probe ends at once (and, with one BDP in flight, so does its drain-down).
    expect(d.bbr.pacingGain).toBeLessThan(1.25);
    expect(d.bbr.inflightHi).toBeCloseTo(1.2 * bdp, 6);
    expect(d.bbr.cwnd).toBeLessThanOrEqual(d.bbr.inflightHi);
    // Outside probing, 15% headroom below the bound, but never below one BDP.
    expect(d.bbr.cwnd).toBeGreaterThanOrEqual(bdp);
    // The bandwidth model is untouched: pacing goes on at the measured rate.
    expect(d.bbr.bw).toBe(400);
    expect(d.bbr.pacingRate).toBeCloseTo(d.bbr.pacingGain * 400 * 0.99, 6);
  });

  it('bounds inflight at no less than 0.7 BDP when the losses went out with little in flight', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    d.toProbeUp();
    d.lossyRound(4, 5000);
    expect(d.bbr.inflightHi).toBeCloseTo(0.7 * 400 * 50, 6);
  });

  it('sets no bound on a lossy round while cruising at the measured rate (not its own queue)', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    d.toProbeUp();
    for (let i = 0; i < 20 && d.bbr.pacingGain !== 1; i++)
      d.ack({ dt: 51, rate: 400, rtt: 50, inFlight: d.bbr.pacingGain * 400 * 50 });
    expect(d.bbr.pacingGain).toBe(1);
    const cwnd = d.bbr.cwnd;
    d.lossyRound(6, 400 * 50);
    expect(d.bbr.lossyRounds).toBe(1);
    expect(d.bbr.inflightHi).toBe(Infinity);
    expect(d.bbr.cwnd).toBeGreaterThanOrEqual(cwnd);
  });

  it('raises the bound again, faster each round, while probing up meets no loss', () => {
    const d = new Driver(() => 0.99);
    d.toProbeBw(400, 50);
    d.toProbeUp();
    d.lossyRound(8, 15_000);
    const bound = d.bbr.inflightHi;
    expect(bound).toBeLessThan(Infinity);
    for (let i = 0; i < 20 && d.bbr.pacingGain !== 1.25; i++)
      d.ack({ dt: 51, rate: 400, rtt: 50, inFlight: 15_000 });
    const steps: number[] = [];
    for (let i = 0; i < 4 && d.bbr.pacingGain === 1.25; i++) {
      const before = d.bbr.inflightHi;
      d.ack({ dt: 51, rate: 400, rtt: 50, inFlight: d.bbr.inflightHi, acked: 20 * MSS });
      steps.push(d.bbr.inflightHi - before);
    }
    expect(d.bbr.inflightHi).toBeGreaterThan(bound);
    for (let i = 1; i < steps.length; i++) expect(steps[i]!).toBeGreaterThanOrEqual(steps[i - 1]!);
  });

  it('leaves startup when a round loses more than 2%', () => {
    const d = new Driver();
    d.ack({ dt: 50, rate: 100, rtt: 50, inFlight: 5000 });
    d.ack({ dt: 50, rate: 200, rtt: 50, inFlight: 30_000, acked: 20 * MSS, lostPackets: 5 });
    d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 40_000 });
    expect(d.bbr.fullBwReached).toBe(true);
    expect(d.bbr.state).toBe('drain');
  });

  it('restarts from 4 packets after persistent congestion and grows back towards the model', () => {
    const d = new Driver();
    d.toProbeBw(400, 50);
    for (let i = 0; i < 10; i++) d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 400 * 50 });
    d.bbr.onPersistentCongestion();
    expect(d.bbr.cwnd).toBe(4 * MSS);
    // One doubling a round: 4 → 8 → 16 → 32 → 64 packets ≥ 2 BDP (about 33 packets).
    for (let i = 0; i < 4; i++)
      d.ack({ dt: 50, rate: 400, rtt: 50, inFlight: 0, acked: d.bbr.cwnd });
    expect(d.bbr.cwnd).toBeGreaterThanOrEqual(2 * 400 * 50);
  });
});
