import { describe, expect, it } from 'vitest';
import { CSS_ROUNDS, HyStart, N_RTT_SAMPLE } from '../../../core/paths/hystart.js';
import { PathRecovery } from '../../../core/paths/path-recovery.js';
import { ManualClock } from '../../../core/util/clock.js';
import { BraidError } from '../../../core/util/errors.js';

/** Feeds one round: `count` ACKs with RTT `rtt`, the first one closing the previous round. */
function round(h: HyStart, state: { pn: number }, rtt: number, count = N_RTT_SAMPLE): boolean {
  let exited = false;
  const end = state.pn + count;
  for (; state.pn < end; state.pn++) {
    // The round's packets were all sent before its first ACK: nextPn is the round's end.
    if (h.onAck(state.pn, end, rtt)) exited = true;
  }
  return exited;
}

describe('HyStart++ (RFC 9406)', () => {
  it('stays in slow start while the RTT holds', () => {
    const h = new HyStart();
    const s = { pn: 0 };
    for (let i = 0; i < 10; i++) expect(round(h, s, 20)).toBe(false);
    expect(h.inCss).toBe(false);
    expect(h.growth(1000)).toBe(1000);
  });

  it('enters conservative slow start when a round’s minimum RTT rises by the threshold, and ends slow start after CSS_ROUNDS rounds', () => {
    const h = new HyStart();
    const s = { pn: 0 };
    round(h, s, 20);
    // 20 ms / 8 = 2.5 ms, clamped up to 4 ms: 23 ms is not yet a rise.
    round(h, s, 23);
    expect(h.inCss).toBe(false);
    round(h, s, 28);
    expect(h.inCss).toBe(true);
    expect(h.growth(1000)).toBe(250);
    const exits: boolean[] = [];
    for (let i = 0; i < CSS_ROUNDS; i++) exits.push(round(h, s, 30));
    expect(exits).toEqual([false, false, false, false, true]);
    expect(h.exits).toBe(1);
    expect(h.inCss).toBe(false);
  });

  it('goes back to slow start when the RTT falls below the CSS baseline (a spurious rise)', () => {
    const h = new HyStart();
    const s = { pn: 0 };
    round(h, s, 20);
    round(h, s, 30);
    expect(h.inCss).toBe(true);
    round(h, s, 22);
    expect(h.inCss).toBe(false);
  });

  it('judges no round with fewer than N_RTT_SAMPLE samples', () => {
    const h = new HyStart();
    const s = { pn: 0 };
    round(h, s, 20, 4);
    round(h, s, 60, N_RTT_SAMPLE - 1);
    expect(h.inCss).toBe(false);
  });
});

describe('PathRecovery with HyStart++', () => {
  const MSS = 1200;
  const ok = <T>(x: T | BraidError): T => {
    if (x instanceof BraidError) throw x;
    return x;
  };

  it('ends slow start without a loss once queueing delay builds, growing a quarter as fast in between', () => {
    const clock = new ManualClock(1000);
    const r = new PathRecovery<number>(
      { kind: 'udp', maxDatagramSize: MSS, congestion: 'cubic' },
      clock,
    );
    let pn = 0;
    let rtt = 20;
    const sizes: number[] = [];
    // Each round sends a window and ACKs it packet by packet; from the 4th round the
    // RTT grows by 10 ms a round, as behind a filling queue.
    for (let k = 0; k < 12 && r.cwnd < r.ssthresh; k++) {
      const packets = Math.floor(r.cwnd / MSS);
      const first = pn;
      for (let i = 0; i < packets; i++, pn++) r.onPacketSent(r.nextPacketNumber(), MSS, true, pn);
      if (k >= 3) rtt += 10;
      clock.advance(rtt);
      for (let q = first; q < pn; q++) ok(r.onAck([{ first: first, last: q }], 0));
      sizes.push(r.cwnd);
    }
    expect(r.packetsLost).toBe(0);
    expect(r.hystart.exits).toBe(1);
    // ssthresh took the window at the exit; congestion avoidance has grown it a little since.
    expect(Number.isFinite(r.ssthresh)).toBe(true);
    expect(r.cwnd / r.ssthresh).toBeGreaterThanOrEqual(1);
    expect(r.cwnd / r.ssthresh).toBeLessThan(1.05);
    // Doubling until the rise, then at most 1.25× per round.
    expect(sizes[1]! / sizes[0]!).toBeCloseTo(2, 1);
    const last = sizes.length - 1;
    expect(sizes[last]! / sizes[last - 1]!).toBeLessThanOrEqual(1.26);
  });
});

describe('PathRecovery: slow-start pacing', () => {
  it('paces slow start by the newest RTT when srtt still carries an inflated first sample', () => {
    const MSS = 1200;
    const clock = new ManualClock(1000);
    const r = new PathRecovery<number>(
      { kind: 'udp', maxDatagramSize: MSS, congestion: 'cubic' },
      clock,
    );
    const sample = (rtt: number): void => {
      const pn = r.nextPacketNumber();
      r.onPacketSent(pn, MSS, true, pn);
      clock.advance(rtt);
      const result = r.onAck([{ first: pn, last: pn }], 0);
      if (result instanceof BraidError) throw result;
    };
    // The path's first sample took the handshake's processing (50 ms on a 15 ms path).
    sample(50);
    sample(15);
    expect(r.srtt).toBeGreaterThan(40);
    expect(r.cwnd).toBeLessThan(r.ssthresh);
    // Drain the burst allowance, then time the next full packet: 2 × cwnd per 15 ms.
    const now = clock.now();
    while (r.nextSendTime(MSS, now) === now) {
      const pn = r.nextPacketNumber();
      r.onPacketSent(pn, MSS, true, pn);
    }
    const wait = r.nextSendTime(MSS, now) - now;
    expect(wait).toBeLessThanOrEqual((MSS * 15) / (2 * r.cwnd) + 1e-9);
    expect(wait).toBeGreaterThan(0);
  });
});
