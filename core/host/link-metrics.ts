import type { Clock } from '../util/clock.js';

/**
 * Counters of one path, read once per tick (from core/session's `pathSummary()` and
 * the path's stats). `jitterMs` and `lossRate` are filled once core/paths has its own
 * estimators (another change in flight); this module then passes them through and only
 * derives what is missing.
 */
export interface PathCounters {
  srttMs: number;
  /** The newest RTT sample (ms); 0 before the first. */
  latestRttMs: number;
  hasRtt: boolean;
  lost: number;
  sent: number;
  bytesSent: number;
  bytesReceived: number;
  jitterMs?: number;
  lossRate?: number;
}

/** What `countersOf` reads of a path (core/session/path.ts Path has it). */
export interface CountedPath {
  recovery: { srtt: number; latestRtt: number; hasRttSample: boolean; packetsLost: number };
  stats: { packetsSent: number; bytesSent: number; bytesReceived: number };
}

/** A path's counters as LinkMetrics.update takes them. */
export function countersOf(path: CountedPath): PathCounters {
  return {
    srttMs: path.recovery.srtt,
    latestRttMs: path.recovery.latestRtt,
    hasRtt: path.recovery.hasRttSample,
    lost: path.recovery.packetsLost,
    sent: path.stats.packetsSent,
    bytesSent: path.stats.bytesSent,
    bytesReceived: path.stats.bytesReceived,
  };
}

export interface LinkMetricsOptions {
  clock: Clock;
  /** Window of the loss rate (ms); a few seconds smooths single bursts without hiding trends. */
  lossWindowMs?: number;
  /** Window of the throughput (ms). */
  rateWindowMs?: number;
}

interface Mark {
  t: number;
  lost: number;
  sent: number;
  bytesSent: number;
  bytesReceived: number;
}

/**
 * Latency, jitter, loss rate and throughput of one path from successive counter reads.
 *
 * Jitter follows RFC 3550 §6.4.1: J += (|D| − J) / 16, where D is the difference of
 * two successive transit times; here the transit time is the round trip of the newest
 * RTT sample seen at each read (a new sample only: an unchanged value is not a sample).
 * Loss is lost / sent packets over a sliding window, so that it recovers after a burst.
 */
export class LinkMetrics {
  private readonly clock: Clock;
  private readonly lossWindowMs: number;
  private readonly rateWindowMs: number;
  private readonly marks: Mark[] = [];
  private jitter: number | null = null;
  private lastRtt: number | null = null;
  private latency: number | null = null;
  private loss: number | null = null;
  private lossBasis = 0;
  private up = 0;
  private down = 0;

  constructor(options: LinkMetricsOptions) {
    this.clock = options.clock;
    this.lossWindowMs = options.lossWindowMs ?? 10_000;
    this.rateWindowMs = options.rateWindowMs ?? 1_000;
  }

  update(c: PathCounters): void {
    const now = this.clock.now();
    if (c.hasRtt) {
      this.latency = c.srttMs;
      if (c.jitterMs !== undefined) {
        this.jitter = c.jitterMs;
      } else if (this.lastRtt === null) {
        this.jitter = 0;
        this.lastRtt = c.latestRttMs;
      } else if (c.latestRttMs !== this.lastRtt) {
        const d = Math.abs(c.latestRttMs - this.lastRtt);
        this.jitter = (this.jitter ?? 0) + (d - (this.jitter ?? 0)) / 16;
        this.lastRtt = c.latestRttMs;
      }
    }
    this.marks.push({
      t: now,
      lost: c.lost,
      sent: c.sent,
      bytesSent: c.bytesSent,
      bytesReceived: c.bytesReceived,
    });
    // Keep one mark at or before the window start so that the window is full.
    const horizon = now - Math.max(this.lossWindowMs, this.rateWindowMs);
    while (this.marks.length > 2 && this.marks[1]!.t <= horizon) this.marks.shift();

    const from = this.markAtOrBefore(now - this.lossWindowMs);
    const sent = c.sent - from.sent;
    this.lossBasis = sent;
    if (c.lossRate !== undefined) {
      this.loss = c.lossRate;
    } else {
      // No packet sent in the window: the loss rate is unknown, not zero.
      this.loss = sent > 0 ? Math.min(1, Math.max(0, (c.lost - from.lost) / sent)) : this.loss;
    }
    const r = this.markAtOrBefore(now - this.rateWindowMs);
    const dt = (now - r.t) / 1000;
    this.up = dt > 0 ? (c.bytesSent - r.bytesSent) / dt : 0;
    this.down = dt > 0 ? (c.bytesReceived - r.bytesReceived) / dt : 0;
  }

  /** The newest mark not after `t`, or the oldest one there is. */
  private markAtOrBefore(t: number): Mark {
    let pick = this.marks[0]!;
    for (const m of this.marks) {
      if (m.t <= t) pick = m;
      else break;
    }
    return pick;
  }

  get latencyMs(): number | null {
    return this.latency;
  }
  get jitterMs(): number | null {
    return this.jitter;
  }
  get lossRate(): number | null {
    return this.loss;
  }
  /**
   * Packets sent over the loss window, what the loss rate stands on: one loss among
   * eight probes is no reason to call a link degraded.
   */
  get lossBasisPackets(): number {
    return this.lossBasis;
  }
  get upBps(): number {
    return this.up;
  }
  get downBps(): number {
    return this.down;
  }
}
