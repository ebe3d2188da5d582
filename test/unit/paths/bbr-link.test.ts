import { describe, expect, it } from 'vitest';
import { PathRecovery, type CongestionKind } from '../../../core/paths/path-recovery.js';
import { ManualClock } from '../../../core/util/clock.js';
import { BraidError } from '../../../core/util/errors.js';
import { seededRandom } from '../../support/impaired-subflow.js';

/**
 * BBR against CUBIC on a simulated bottleneck: one greedy PathRecovery sender, a drop-
 * tail buffer before a link of a given rate (which may change), random loss, a fixed
 * base RTT, and a receiver that acknowledges as Braid's does (every second packet, at
 * once on a gap, else after max_ack_delay). Tens of seconds run in milliseconds.
 * Set BRAID_BBR_REPORT=1 to print the measured figures.
 */

const MSS = 1452;

interface LinkSpec {
  rateMbps: number;
  rttMs: number;
  /** Drop-tail buffer, bytes. */
  bufferBytes: number;
  loss: number;
  /** The rate changes to `rateMbps` at `atMs`. */
  rateChange?: { atMs: number; rateMbps: number };
}

interface Ev {
  t: number;
  seq: number;
  kind: 'depart' | 'arrive' | 'ack' | 'wake' | 'ack-timer' | 'rate';
  pn: number;
  ranges?: Array<{ first: number; last: number }>;
  ackDelayMicros?: number;
}

class EventQueue {
  private readonly a: Ev[] = [];
  private seq = 0;
  peek(): Ev | undefined {
    return this.a[0];
  }
  push(e: Omit<Ev, 'seq'>): void {
    const a = this.a;
    a.push({ ...e, seq: this.seq++ });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(a[p]!, a[i]!)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): Ev | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (l + 1 < a.length && before(a[l + 1]!, a[m]!)) m = l + 1;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
const before = (x: Ev, y: Ev): boolean => x.t < y.t || (x.t === y.t && x.seq < y.seq);

interface SimResult {
  /** Goodput over [measureFromMs, end], Mbit/s (bytes that reached the receiver). */
  goodputMbps: number;
  /** Largest standing queue in the buffer after measureFromMs, bytes. */
  queuePeakBytes: number;
  /** Largest queue at any time, start-up included. */
  queuePeakAllBytes: number;
  /** Goodput per 100 ms bin, Mbit/s. */
  bins: number[];
  /** Queue peak per 100 ms bin, bytes. */
  queueBins: number[];
  /** BBR's bandwidth estimate at the end of each 100 ms bin, Mbit/s (0 for CUBIC). */
  estimateBins: number[];
  sender: PathRecovery<number>;
  lossRate: number;
}

function simulate(opts: {
  link: LinkSpec;
  congestion: CongestionKind;
  seconds: number;
  measureFromMs: number;
  seed?: number;
}): SimResult {
  const { link } = opts;
  const clock = new ManualClock(0);
  const lossRandom = seededRandom(opts.seed ?? 7);
  const snd = new PathRecovery<number>(
    {
      kind: 'udp',
      maxDatagramSize: MSS,
      congestion: opts.congestion,
      random: seededRandom((opts.seed ?? 7) + 1),
    },
    clock,
  );
  const rcv = new PathRecovery<number>({ kind: 'udp', maxDatagramSize: MSS }, clock);
  const events = new EventQueue();
  const oneWay = link.rttMs / 2;
  let rateBytesPerMs = (link.rateMbps * 1e6) / 8 / 1000;
  const queue: number[] = [];
  let queueBytes = 0;
  let busy = false;
  let wakeAt = -1;
  let ackTimerAt = -1;
  const binMs = 100;
  const nBins = Math.ceil((opts.seconds * 1000) / binMs);
  const bins = new Array<number>(nBins).fill(0);
  const queueBins = new Array<number>(nBins).fill(0);
  const estimateBins = new Array<number>(nBins).fill(0);
  let measured = 0;
  let queuePeak = 0;
  let queuePeakAll = 0;
  let offered = 0;
  let dropped = 0;

  const startService = (): void => {
    if (busy || queue.length === 0) return;
    busy = true;
    events.push({ t: clock.now() + MSS / rateBytesPerMs, kind: 'depart', pn: queue[0]! });
  };

  const transmit = (pn: number): void => {
    offered++;
    // Random loss on the radio link (not congestion), then the drop-tail buffer.
    if (lossRandom() < link.loss || queueBytes + MSS > link.bufferBytes) {
      dropped++;
      return;
    }
    queue.push(pn);
    queueBytes += MSS;
    const now = clock.now();
    // The standing queue: bytes waiting behind the one in service.
    const standing = queueBytes - MSS;
    const bin = Math.min(nBins - 1, Math.floor(now / binMs));
    if (standing > queueBins[bin]!) queueBins[bin] = standing;
    if (standing > queuePeakAll) queuePeakAll = standing;
    if (now >= opts.measureFromMs && standing > queuePeak) queuePeak = standing;
    startService();
  };

  const sendOne = (): void => {
    const pn = snd.nextPacketNumber();
    snd.onPacketSent(pn, MSS, true, pn);
    transmit(pn);
  };

  const trySend = (): void => {
    const now = clock.now();
    while (snd.sendAllowance() > 0) {
      const at = snd.nextSendTime(MSS, now);
      if (at > now) {
        if (wakeAt <= now) {
          wakeAt = at;
          events.push({ t: at, kind: 'wake', pn: -1 });
        }
        return;
      }
      sendOne();
    }
  };

  const sendAck = (): void => {
    const ack = rcv.buildAck(0);
    if (ack === undefined) return;
    events.push({
      t: clock.now() + oneWay,
      kind: 'ack',
      pn: -1,
      ranges: ack.ranges,
      ackDelayMicros: ack.ackDelayMicros,
    });
  };

  if (link.rateChange !== undefined) events.push({ t: link.rateChange.atMs, kind: 'rate', pn: -1 });
  const end = opts.seconds * 1000;
  trySend();
  while (clock.now() < end) {
    const deadline = snd.timerDeadline();
    const next = events.peek();
    if (deadline !== undefined && (next === undefined || deadline < next.t)) {
      clock.set(Math.max(clock.now(), deadline));
      const { probe } = snd.onTimer();
      // RFC 9002 §6.2.4: probes go out whatever the window says.
      for (let i = 0; i < probe; i++) sendOne();
      trySend();
      continue;
    }
    if (next === undefined) break;
    events.pop();
    clock.set(Math.max(clock.now(), next.t));
    const now = clock.now();
    switch (next.kind) {
      case 'depart': {
        queue.shift();
        queueBytes -= MSS;
        busy = false;
        events.push({ t: now + oneWay, kind: 'arrive', pn: next.pn });
        startService();
        break;
      }
      case 'arrive': {
        const bin = Math.min(nBins - 1, Math.floor(now / binMs));
        bins[bin] = bins[bin]! + MSS;
        if (now >= opts.measureFromMs) measured += MSS;
        if (rcv.onPacketReceived(next.pn, true)) sendAck();
        else {
          const at = rcv.ackDeadline();
          if (at !== undefined && ackTimerAt < now) {
            ackTimerAt = at;
            events.push({ t: at, kind: 'ack-timer', pn: -1 });
          }
        }
        break;
      }
      case 'ack-timer': {
        ackTimerAt = -1;
        const at = rcv.ackDeadline();
        if (at !== undefined && at <= now) sendAck();
        else if (at !== undefined) {
          ackTimerAt = at;
          events.push({ t: at, kind: 'ack-timer', pn: -1 });
        }
        break;
      }
      case 'ack': {
        const r = snd.onAck(next.ranges ?? [], next.ackDelayMicros ?? 0);
        if (r instanceof BraidError) throw r;
        const bin = Math.min(nBins - 1, Math.floor(now / binMs));
        estimateBins[bin] = ((snd.bbrModel?.bandwidth ?? 0) * 8) / 1e6;
        trySend();
        break;
      }
      case 'wake':
        wakeAt = -1;
        trySend();
        break;
      case 'rate':
        rateBytesPerMs = (link.rateChange!.rateMbps * 1e6) / 8 / 1000;
        break;
    }
  }
  const seconds = (end - opts.measureFromMs) / 1000;
  return {
    goodputMbps: (measured * 8) / seconds / 1e6,
    queuePeakBytes: queuePeak,
    queuePeakAllBytes: queuePeakAll,
    bins: bins.map((b) => (b * 8) / (binMs / 1000) / 1e6),
    queueBins,
    estimateBins,
    sender: snd,
    lossRate: dropped / Math.max(offered, 1),
  };
}

const bdpBytes = (mbps: number, rttMs: number): number => (mbps * 1e6 * rttMs) / 8 / 1000;

const report = process.env['BRAID_BBR_REPORT'] === '1';
function note(line: string): void {
  if (report) process.stdout.write(`${line}\n`);
}

/** 10 Mbit/s, 60 ms: scenario b's LTE uplink (test/lab/scenarios/b-wifi-lte.json). */
const LTE = { rateMbps: 10, rttMs: 60 };
const LTE_BDP = bdpBytes(LTE.rateMbps, LTE.rttMs);

describe('BBR on a simulated bottleneck', () => {
  it('uses a 10 Mbit/s, 60 ms link with 1% random loss at ≥ 85% of its rate, where CUBIC gets far less', () => {
    const link = { ...LTE, bufferBytes: 2 * LTE_BDP, loss: 0.01 };
    const results = [1, 2].map((seed) => ({
      bbr: simulate({ link, congestion: 'bbr', seconds: 25, measureFromMs: 5000, seed }),
      cubic: simulate({ link, congestion: 'cubic', seconds: 25, measureFromMs: 5000, seed }),
    }));
    for (const [i, r] of results.entries()) {
      note(
        `lossy 1% seed ${i + 1}: bbr ${r.bbr.goodputMbps.toFixed(2)} Mbit/s (${r.bbr.sender.bbrModel?.state}), ` +
          `cubic ${r.cubic.goodputMbps.toFixed(2)} Mbit/s, bbr queue peak ${(r.bbr.queuePeakBytes / LTE_BDP).toFixed(2)} BDP`,
      );
      expect(r.bbr.goodputMbps).toBeGreaterThanOrEqual(0.85 * LTE.rateMbps);
      expect(r.bbr.goodputMbps).toBeLessThanOrEqual(LTE.rateMbps * 1.001);
      // CUBIC reads every loss as congestion: a few Mbit/s at most (Mathis et al.).
      expect(r.cubic.goodputMbps).toBeLessThan(0.6 * LTE.rateMbps);
      expect(r.bbr.goodputMbps).toBeGreaterThan(1.5 * r.cubic.goodputMbps);
    }
  });

  it('keeps the queue it builds on a clean link with a deep buffer within about 1.5 BDP, at full rate', () => {
    const link = { ...LTE, bufferBytes: 20 * LTE_BDP, loss: 0 };
    const bbr = simulate({ link, congestion: 'bbr', seconds: 30, measureFromMs: 3000 });
    const cubic = simulate({ link, congestion: 'cubic', seconds: 30, measureFromMs: 3000 });
    note(
      `clean deep buffer: bbr ${bbr.goodputMbps.toFixed(2)} Mbit/s, queue peak ${(bbr.queuePeakBytes / LTE_BDP).toFixed(2)} BDP ` +
        `(${(bbr.queuePeakAllBytes / LTE_BDP).toFixed(2)} with start-up); cubic ${cubic.goodputMbps.toFixed(2)} Mbit/s, ` +
        `queue peak ${(cubic.queuePeakBytes / LTE_BDP).toFixed(2)} BDP`,
    );
    expect(bbr.goodputMbps).toBeGreaterThanOrEqual(0.95 * LTE.rateMbps);
    expect(bbr.queuePeakBytes).toBeLessThanOrEqual(1.5 * LTE_BDP);
    // Start-up overshoots by at most its window (cwnd_gain × BDP) less the pipe.
    expect(bbr.queuePeakAllBytes).toBeLessThanOrEqual(2 * LTE_BDP);
    // CUBIC fills whatever buffer there is: the contrast this test is about.
    expect(cubic.queuePeakBytes).toBeGreaterThan(3 * LTE_BDP);
  });

  it('is as fast as CUBIC on clean links with a buffer of one BDP', () => {
    for (const l of [LTE, { rateMbps: 30, rttMs: 20 }, { rateMbps: 50, rttMs: 100 }]) {
      const link = { ...l, bufferBytes: bdpBytes(l.rateMbps, l.rttMs), loss: 0 };
      const bbr = simulate({ link, congestion: 'bbr', seconds: 15, measureFromMs: 3000 });
      const cubic = simulate({ link, congestion: 'cubic', seconds: 15, measureFromMs: 3000 });
      note(
        `clean ${l.rateMbps} Mbit/s ${l.rttMs} ms, 1 BDP buffer: bbr ${bbr.goodputMbps.toFixed(2)}, cubic ${cubic.goodputMbps.toFixed(2)} Mbit/s, ` +
          `loss bbr ${(bbr.lossRate * 100).toFixed(2)}% cubic ${(cubic.lossRate * 100).toFixed(2)}%`,
      );
      expect(bbr.goodputMbps).toBeGreaterThanOrEqual(0.95 * l.rateMbps);
      expect(bbr.goodputMbps).toBeGreaterThanOrEqual(0.98 * cubic.goodputMbps);
    }
  });

  it('adapts within a few seconds when the link rate halves (about ten of its inflated rounds)', () => {
    const changeAt = 10_000;
    const link = {
      ...LTE,
      bufferBytes: 4 * LTE_BDP,
      loss: 0,
      rateChange: { atMs: changeAt, rateMbps: 5 },
    };
    const newBdp = bdpBytes(5, LTE.rttMs);
    const bbr = simulate({ link, congestion: 'bbr', seconds: 20, measureFromMs: changeAt });
    const cubic = simulate({ link, congestion: 'cubic', seconds: 20, measureFromMs: changeAt });
    // Adapted: the queue is back under 1.5 new BDPs for good, and the link stays busy.
    const firstBin = changeAt / 100;
    const settledMs = (bins: number[], ok: (v: number) => boolean): number => {
      let last = firstBin;
      for (let b = firstBin; b < bins.length; b++) if (!ok(bins[b]!)) last = b + 1;
      return (last - firstBin) * 100;
    };
    const adaptMs = settledMs(bbr.queueBins, (q) => q <= 1.5 * newBdp);
    const estimateMs = settledMs(bbr.estimateBins, (e) => Math.abs(e - 5) <= 0.5);
    const estimate = ((bbr.sender.bbrModel?.bandwidth ?? 0) * 8) / 1e6;
    note(
      `rate 10 → 5 Mbit/s: bbr estimate within 10% after ${estimateMs} ms, queue under 1.5 BDP after ${adaptMs} ms, ` +
        `goodput after ${bbr.goodputMbps.toFixed(2)} Mbit/s, queue peak ${(bbr.queuePeakBytes / newBdp).toFixed(2)} new BDP; ` +
        `cubic ${cubic.goodputMbps.toFixed(2)} Mbit/s, queue under 1.5 BDP after ` +
        `${settledMs(cubic.queueBins, (q) => q <= 1.5 * newBdp)} ms, peak ${(cubic.queuePeakBytes / newBdp).toFixed(2)} new BDP`,
    );
    expect(estimateMs).toBeLessThanOrEqual(4000);
    expect(adaptMs).toBeLessThanOrEqual(4000);
    expect(bbr.goodputMbps).toBeGreaterThanOrEqual(0.9 * 5);
    expect(estimate).toBeGreaterThan(4);
    expect(estimate).toBeLessThan(6);
  });
});

describe("config 'auto' on a simulated bottleneck", () => {
  it('switches a path with 1% random loss to BBR within a few seconds and then uses ≥ 85% of it', () => {
    const link = { ...LTE, bufferBytes: 2 * LTE_BDP, loss: 0.01 };
    for (const seed of [1, 2]) {
      const auto = simulate({ link, congestion: 'auto', seconds: 25, measureFromMs: 5000, seed });
      note(
        `auto, lossy 1% seed ${seed}: switched at ${auto.sender.autoSwitchedAt} ms, ` +
          `${auto.goodputMbps.toFixed(2)} Mbit/s`,
      );
      expect(auto.sender.controller).toBe('bbr');
      expect(auto.sender.coupled).toBe(false);
      expect(auto.sender.autoSwitchedAt).toBeLessThan(5000);
      expect(auto.goodputMbps).toBeGreaterThanOrEqual(0.85 * LTE.rateMbps);
    }
  });

  it('stays on CUBIC where loss comes from a full buffer (one BDP or deeper), as at a shared bottleneck', () => {
    for (const l of [LTE, { rateMbps: 30, rttMs: 20 }, { rateMbps: 20, rttMs: 30 }]) {
      for (const buffers of [1, 2]) {
        const link = { ...l, bufferBytes: buffers * bdpBytes(l.rateMbps, l.rttMs), loss: 0 };
        const auto = simulate({ link, congestion: 'auto', seconds: 20, measureFromMs: 3000 });
        note(
          `auto, clean ${l.rateMbps} Mbit/s ${l.rttMs} ms, ${buffers} BDP buffer: ${auto.sender.controller}, ` +
            `${auto.goodputMbps.toFixed(2)} Mbit/s, loss ${(auto.lossRate * 100).toFixed(2)}%`,
        );
        expect(auto.lossRate).toBeGreaterThan(0);
        expect(auto.sender.controller).toBe('cubic');
        // Its losses came from the full buffer: it takes part in the LIA coupling.
        expect(auto.sender.coupled).toBe(true);
        expect(auto.goodputMbps).toBeGreaterThanOrEqual(0.9 * l.rateMbps);
      }
    }
  });
});
