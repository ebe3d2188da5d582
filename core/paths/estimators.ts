import type { TransportKind } from '../wire/frame.js';
import { BraidError } from '../util/errors.js';
import { SlidingSum, WindowedMaxFilter } from './windowed-filter.js';

/**
 * Path estimators (DESIGN §2 paths/, paper §III-B "path evaluation"). Smoothed RTT and
 * its variance are PathRecovery's (RFC 9002 §5) and are not repeated here; this file
 * adds what the schedulers need beyond them: delay variation (RFC 3550 jitter), loss
 * over a sliding window, a longer windowed maximum of the delivery rate, and for TCP
 * paths what user space can see of the socket. All are pure: every input carries its
 * own time, so a test replays minutes of traffic in milliseconds (STYLE §5), and no
 * update allocates (they run per packet).
 */

function checkPositive(name: string, value: number): void {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new BraidError('BRAID_ERR_CONFIG', `${name} must be a positive number`, { value });
  }
}

// ------------------------------------------------------------------- jitter

/**
 * Interarrival jitter, RFC 3550 §6.4.1: for packets i and j, with sender timestamps S
 * and arrival times R, D(i,j) = (Rj - Ri) - (Sj - Si), and J += (|D| - J) / 16. The
 * two clocks need not agree: only differences of transit times are used.
 *
 * Inputs are (sendTimestampMs, arrivalMs) pairs: on the receiver, the PROBE frame's
 * sentAtMicros / 1000 and the local arrival time; on the sender, `onTransit()` takes
 * an RTT sample with the peer's ACK delay removed, which is the same formula applied
 * to round-trip transit times.
 */
export class JitterEstimator {
  /** Current jitter estimate in ms (0 before two samples). */
  jitter = 0;
  samples = 0;
  /** Inputs refused because they were not finite numbers. */
  rejected = 0;
  private lastTransit = NaN;

  onArrival(sendTimestampMs: number, arrivalMs: number): void {
    this.onTransit(arrivalMs - sendTimestampMs);
  }

  /** One transit time (arrival - send, in ms; any constant clock offset cancels). */
  onTransit(transitMs: number): void {
    if (!Number.isFinite(transitMs)) {
      this.rejected++;
      return;
    }
    if (this.samples > 0) {
      const d = Math.abs(transitMs - this.lastTransit);
      this.jitter += (d - this.jitter) / 16;
    }
    this.lastTransit = transitMs;
    this.samples++;
  }
}

// --------------------------------------------------------------------- loss

export interface LossWindowConfig {
  /** Packet-count window: the outcomes of the last N packets. */
  packets?: number;
  /** Time window in ms. */
  windowMs?: number;
  /** Packets the time window must hold before its figure is preferred. */
  minSamples?: number;
  /**
   * Outcomes older than this leave the packet-count window too, except the newest
   * minSamples (default 60 s).
   */
  maxAgeMs?: number;
}

/**
 * Loss rate over a sliding window, both packet-count based (the last N outcomes, a
 * ring of bits) and time based (outcomes in the last T ms, in buckets). `rate(now)`
 * gives the time-based figure when the recent window holds enough packets, and
 * otherwise the last N packets: an idle path keeps the last thing known about it
 * instead of falling back to "no loss". Not for ever, though: outcomes older than
 * maxAgeMs leave the ring too (the newest minSamples stay, whatever their age). A
 * path the loss stage shut out (gain 0) carries only idle probes, about one a second,
 * and with the ring alone its figure was that of its last 1000 data packets for some
 * 13 minutes, so it was never tried again. Now after a minute its probes speak for it:
 * it gets traffic back if they arrived, and a path that is still lossy is measured
 * again and shut out again.
 */
export class LossWindow {
  private readonly ring: Uint8Array;
  /** When each ring slot's outcome was recorded (ms). */
  private readonly ringAt: Float64Array;
  private ringNext = 0;
  private ringCount = 0;
  private ringLost = 0;
  private readonly timeTotal: SlidingSum;
  private readonly timeLost: SlidingSum;
  private readonly minSamples: number;
  private readonly maxAgeMs: number;
  /** Lifetime counters. */
  delivered = 0;
  lost = 0;

  constructor(config: LossWindowConfig = {}) {
    const packets = config.packets ?? 1000;
    const windowMs = config.windowMs ?? 10_000;
    checkPositive('loss window packets', packets);
    checkPositive('loss windowMs', windowMs);
    const maxAgeMs = config.maxAgeMs ?? 60_000;
    checkPositive('loss maxAgeMs', maxAgeMs);
    this.ring = new Uint8Array(Math.ceil(packets));
    this.ringAt = new Float64Array(this.ring.length);
    this.timeTotal = new SlidingSum(windowMs, 10);
    this.timeLost = new SlidingSum(windowMs, 10);
    this.minSamples = config.minSamples ?? 20;
    this.maxAgeMs = maxAgeMs;
  }

  onDelivered(now: number, count = 1): void {
    this.delivered += count;
    this.timeTotal.add(now, count);
    for (let i = 0; i < count; i++) this.push(0, now);
  }

  onLost(now: number, count = 1): void {
    this.lost += count;
    this.timeTotal.add(now, count);
    this.timeLost.add(now, count);
    for (let i = 0; i < count; i++) this.push(1, now);
  }

  private push(bit: 0 | 1, now: number): void {
    const n = this.ring.length;
    if (this.ringCount === n) this.ringLost -= this.ring[this.ringNext]!;
    else this.ringCount++;
    this.ring[this.ringNext] = bit;
    this.ringAt[this.ringNext] = now;
    this.ringLost += bit;
    this.ringNext = (this.ringNext + 1) % n;
  }

  /** Drops the oldest outcomes older than maxAgeMs, keeping the newest minSamples. */
  private expire(now: number): void {
    const n = this.ring.length;
    while (this.ringCount > this.minSamples) {
      const oldest = (this.ringNext - this.ringCount + n) % n;
      if (now - this.ringAt[oldest]! <= this.maxAgeMs) return;
      this.ringLost -= this.ring[oldest]!;
      this.ringCount--;
    }
  }

  /** Loss fraction over the last N packets within maxAgeMs (0 with no packets). */
  packetRate(now: number): number {
    this.expire(now);
    return this.ringCount === 0 ? 0 : this.ringLost / this.ringCount;
  }

  /** Loss fraction over the last T ms (0 with no packets in it). */
  timeRate(now: number): number {
    const total = this.timeTotal.sum(now);
    return total === 0 ? 0 : this.timeLost.sum(now) / total;
  }

  /** Packets behind `rate(now)`: how much to trust it. */
  samples(now: number): number {
    const recent = this.timeTotal.sum(now);
    if (recent >= this.minSamples) return recent;
    this.expire(now);
    return this.ringCount;
  }

  rate(now: number): number {
    return this.timeTotal.sum(now) >= this.minSamples ? this.timeRate(now) : this.packetRate(now);
  }
}

// ------------------------------------------------------------------ TCP paths

export interface TcpProgressConfig {
  /** Window over which the ACK progress rate is measured. */
  windowMs?: number;
  /** Floor of the stall timeout. */
  minStallMs?: number;
}

/**
 * What user space can see of a TCP path (paper §III-B: "peeking into state variables
 * ... to ensure that no head-of-the-line blocking phenomena occur"): the bytes Node
 * still holds unsent (`socket.writableLength`), the bytes the peer acknowledged in
 * Braid ACKs, and from them an ACK progress rate and a stall signal — data waiting
 * (unsent or unacknowledged) and no ACK progress for max(3·srtt + 4·rttvar, floor).
 */
export class TcpProgressMonitor {
  unsentBytes = 0;
  inFlightBytes = 0;
  ackedBytes = 0;
  private readonly acked: SlidingSum;
  private readonly minStallMs: number;
  private lastProgress = 0;
  private waiting = false;

  constructor(config: TcpProgressConfig = {}) {
    const windowMs = config.windowMs ?? 2000;
    checkPositive('tcp progress windowMs', windowMs);
    this.acked = new SlidingSum(windowMs, 8);
    this.minStallMs = config.minStallMs ?? 200;
  }

  /** Bytes acknowledged by the peer's Braid ACKs for this path. */
  onAcked(now: number, bytes: number): void {
    if (bytes <= 0) return;
    this.ackedBytes += bytes;
    this.acked.add(now, bytes);
    this.lastProgress = now;
  }

  /** The socket's state: `writableLength` and our unacknowledged bytes on it. */
  sample(now: number, writableLength: number, bytesInFlight: number): void {
    this.unsentBytes = writableLength;
    this.inFlightBytes = bytesInFlight;
    const waiting = writableLength > 0 || bytesInFlight > 0;
    // The stall clock starts when data starts waiting, not at the last ACK of an
    // earlier busy period.
    if (waiting && !this.waiting) this.lastProgress = now;
    this.waiting = waiting;
  }

  /** Bytes per second acknowledged over the window. */
  ackRate(now: number): number {
    return (this.acked.sum(now) / this.acked.windowMs) * 1000;
  }

  stallTimeout(srtt: number, rttvar: number): number {
    return Math.max(3 * srtt + 4 * rttvar, this.minStallMs);
  }

  stalled(now: number, srtt: number, rttvar: number): boolean {
    return this.waiting && now - this.lastProgress >= this.stallTimeout(srtt, rttvar);
  }

  /** How long data queued now waits in the socket before it leaves, at the ACK rate. */
  queueDelayMs(now: number): number {
    if (this.unsentBytes === 0) return 0;
    const rate = this.ackRate(now);
    return rate > 0 ? (this.unsentBytes / rate) * 1000 : Infinity;
  }
}

// ------------------------------------------------------------- per-path bundle

/** What PathEstimator reads from PathRecovery (core/paths/path-recovery.ts). */
export interface RecoveryFigures {
  readonly srtt: number;
  readonly rttvar: number;
  /** The newest RTT sample (ms): ahead of srtt when a queue is building. */
  readonly latestRtt: number;
  readonly hasRttSample: boolean;
  readonly deliveryRate: number;
  readonly cwnd: number;
  readonly bytesInFlight: number;
  /** Bytes the peer acknowledged so far (lifetime counter). */
  readonly bytesAcked: number;
}

/** A path's figures in the form the scoreboard keeps (core/paths/scoreboard.ts). */
export interface PathScore {
  srttMs: number;
  rttvarMs: number;
  /** Bytes per second. */
  deliveryRate: number;
  lossRate: number;
  jitterMs: number;
  /** Packets the figures rest on. */
  samples: number;
}

export interface PathEstimatorConfig {
  kind: TransportKind;
  loss?: LossWindowConfig;
  tcp?: TcpProgressConfig;
  /** Window of the long delivery-rate maximum (PathRecovery's own is 10 RTTs). */
  rateWindowMs?: number;
}

/**
 * Everything measured about one path, in one object the association owns beside the
 * path's PathRecovery. A scoreboard seed stands in for a figure until the path has
 * measured it itself (paper §III-B: a short session starts with good estimates).
 */
export class PathEstimator {
  readonly kind: TransportKind;
  /** Round-trip jitter from our RTT samples: what the schedulers use. */
  readonly jitter = new JitterEstimator();
  /**
   * One-way jitter of the peer's packets towards us, from the PROBE frames' sender
   * timestamps (RFC 3550 §6.4.1 as specified): for the dashboard's per-uplink card.
   * Kept apart from `jitter` because one-way and round-trip transits do not mix.
   */
  readonly inboundJitter = new JitterEstimator();
  readonly loss: LossWindow;
  /** Longer maximum of PathRecovery's delivery rate, for the scoreboard and the guard. */
  readonly rate: WindowedMaxFilter;
  readonly tcp: TcpProgressMonitor | undefined;
  private seed_: PathScore | undefined;
  private rateSamples = 0;
  private lastBytesAcked = 0;

  constructor(config: PathEstimatorConfig) {
    this.kind = config.kind;
    this.loss = new LossWindow(config.loss);
    const rateWindow = config.rateWindowMs ?? 10_000;
    checkPositive('rateWindowMs', rateWindow);
    this.rate = new WindowedMaxFilter(rateWindow);
    this.tcp = config.kind === 'tcp' ? new TcpProgressMonitor(config.tcp) : undefined;
  }

  /** Starts from a scoreboard seed (core/paths/scoreboard.ts `seed()`). */
  seed(score: PathScore): void {
    this.seed_ = score;
  }

  get seeded(): PathScore | undefined {
    return this.seed_;
  }

  /**
   * After PathRecovery.onAck: `acked` and `lost` are the counts it returned, `rttSample`
   * its sample less the peer's ACK delay (undefined when there was none).
   */
  onAck(
    now: number,
    recovery: RecoveryFigures,
    acked: number,
    lost: number,
    rttSample: number | undefined,
  ): void {
    if (acked > 0) this.loss.onDelivered(now, acked);
    if (lost > 0) this.loss.onLost(now, lost);
    if (rttSample !== undefined) this.jitter.onTransit(rttSample);
    if (acked > 0 && recovery.deliveryRate > 0) {
      this.rate.update(recovery.deliveryRate, now);
      this.rateSamples++;
    }
    const newly = recovery.bytesAcked - this.lastBytesAcked;
    this.lastBytesAcked = recovery.bytesAcked;
    if (this.tcp !== undefined && newly > 0) this.tcp.onAcked(now, newly);
  }

  /** A PROBE arrived from the peer on this path: its sentAtMicros / 1000 and our time. */
  onProbeReceived(sentAtMs: number, arrivalMs: number): void {
    this.inboundJitter.onArrival(sentAtMs, arrivalMs);
  }

  /** Losses declared by a timer (PathRecovery.onTimer). */
  onLost(now: number, lost: number): void {
    if (lost > 0) this.loss.onLost(now, lost);
  }

  srtt(recovery: RecoveryFigures): number {
    return recovery.hasRttSample || this.seed_ === undefined ? recovery.srtt : this.seed_.srttMs;
  }

  rttvar(recovery: RecoveryFigures): number {
    return recovery.hasRttSample || this.seed_ === undefined
      ? recovery.rttvar
      : this.seed_.rttvarMs;
  }

  /** Jitter in ms: measured, else seeded, else rttvar (the only variation known yet). */
  jitterMs(recovery: RecoveryFigures): number {
    if (this.jitter.samples >= 2) return this.jitter.jitter;
    if (this.seed_ !== undefined) return this.seed_.jitterMs;
    return recovery.rttvar;
  }

  lossRate(now: number): number {
    const n = this.loss.samples(now);
    if (this.seed_ === undefined || n >= 100) return this.loss.rate(now);
    // Blend the seed with the first packets in proportion to the evidence.
    const w = n / 100;
    return w * this.loss.rate(now) + (1 - w) * this.seed_.lossRate;
  }

  /**
   * Best estimate of what the path can carry, bytes per second: the measured rate,
   * else the seed, and never less than the congestion window per RTT (the measured
   * rate of a path given little is application-limited and stays low; the window
   * keeps growing on a path with room — the reason rate-split.ts uses the same max).
   * On a saturated path the window per RTT is the bottleneck rate (the queue adds to
   * both), so the max costs nothing there.
   */
  deliveryRate(recovery: RecoveryFigures): number {
    // The window is divided by the newer RTT when that is larger: in slow start the
    // window doubles each round while srtt follows the growing queue an eighth at a
    // time, so cwnd/srtt read 1.5× the rate of a 12 Mbit/s link in the lab, and the
    // ECF sent the last 140 KB of a 1 MB transfer onto it (90 ms to drain).
    const rtt = Math.max(this.srtt(recovery), recovery.hasRttSample ? recovery.latestRtt : 0, 0.05);
    const windowRate = (recovery.cwnd / rtt) * 1000;
    let measured = Math.max(recovery.deliveryRate, this.rate.value);
    if (this.rateSamples === 0 && this.seed_ !== undefined) measured = this.seed_.deliveryRate;
    return Math.max(measured, windowRate);
  }

  /** Figures for the scoreboard, or undefined when the path measured nothing yet. */
  score(now: number, recovery: RecoveryFigures): PathScore | undefined {
    if (!recovery.hasRttSample) return undefined;
    return {
      srttMs: recovery.srtt,
      rttvarMs: recovery.rttvar,
      deliveryRate: Math.max(recovery.deliveryRate, this.rate.value),
      lossRate: this.loss.rate(now),
      jitterMs: this.jitter.samples >= 2 ? this.jitter.jitter : recovery.rttvar,
      samples: this.loss.delivered + this.loss.lost,
    };
  }
}
