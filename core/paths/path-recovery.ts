import { CarefulResume, type ResumeSaved } from './careful-resume.js';
import { HyStart } from './hystart.js';
import type { AckFrame, AckRange } from '../wire/frame.js';
import { systemRandom, type Clock, type Random } from '../util/clock.js';
import { BraidError } from '../util/errors.js';
import { WindowedMaxFilter } from './windowed-filter.js';
import type { CongestionCoupling, CoupledPath } from './coupled-congestion.js';
import { Bbr, type BbrState } from './bbr.js';

/**
 * Congestion controllers of UDP paths: loss-based (CUBIC, NewReno), model-based (BBR),
 * or 'auto': CUBIC (coupled, when the association couples) until the path shows that
 * its losses are random — see AUTO_* below — and BBR from then on.
 */
export type CongestionKind = 'newreno' | 'cubic' | 'bbr' | 'auto';

/**
 * Per-path loss recovery and congestion control in the manner of RFC 9002, with
 * CUBIC (RFC 9438), NewReno or BBR (core/paths/bbr.ts), pacing (RFC 9002 §7.7) and
 * delivery-rate sampling (draft-cheng-iccrg-delivery-rate-estimation). It never
 * retransmits: it says which packets were acknowledged and which were lost, and the
 * session layer re-sends the lost frames on whichever path the scheduler picks
 * (DESIGN §3, reinjection).
 *
 * TCP paths are reliable underneath: no loss is ever declared and there is no
 * congestion window of ours, only a cap on bytes in flight (so kernel buffers do not
 * build head-of-line blocking) and a stall signal when ACKs stop progressing.
 */
export interface RecoveryConfig {
  kind: 'udp' | 'tcp';
  maxDatagramSize: number;
  congestion?: CongestionKind;
  /** BBR's choice of probe phase; Math.random unless a test injects one (STYLE §5). */
  random?: Random;
  /** RFC 9002 §6.2.2: 333 ms before any sample. */
  initialRttMs?: number;
  /** RFC 9000 §18.2 max_ack_delay. */
  maxAckDelayMs?: number;
  /** TCP paths: cap on unacknowledged bytes. */
  inflightCapBytes?: number;
}

interface SentPacket<T> {
  pn: number;
  bytes: number;
  time: number;
  ackEliciting: boolean;
  inFlight: boolean;
  token: T;
  /** Delivery-rate sampling state at send time. */
  delivered: number;
  deliveredTime: number;
  firstSentTime: number;
  appLimited: boolean;
  /** Bytes in flight once this packet was sent (BBRv2 tx_in_flight). */
  txInFlight: number;
  /** Sent while the path was dark (drained, only probes out): its loss is no congestion signal. */
  dark: boolean;
  /** Sent in the path's startup (see detectedStartupLost). */
  startup: boolean;
}

/** RFC 9002 §6.1.1 */
const PACKET_THRESHOLD = 3;
/** RFC 9002 §6.1.2 */
const TIME_THRESHOLD = 9 / 8;
/** RFC 9002 §6.1.2 kGranularity */
const GRANULARITY_MS = 1;
/** RFC 9002 §7.6 kPersistentCongestionThreshold */
const PERSISTENT_CONGESTION_THRESHOLD = 3;
/** RFC 9438 §4.6 C and §4.5 beta_cubic */
const CUBIC_C = 0.4;
const CUBIC_BETA = 0.7;
/** RFC 9438 §4.3: the AIMD increase that is Reno-friendly with a decrease to β. */
const CUBIC_RENO_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);
/** Received ranges kept for ACKs (older ones are dropped). */
const MAX_RECEIVED_RANGES = 64;
/**
 * Ranges sent in one ACK, newest first (RFC 9000 §13.2.4 lets a receiver limit them).
 * Each gap is a loss the sender has long declared by the time six newer losses have
 * followed it (its loss detection needs three later packets acknowledged), and every
 * ACK since reported it again: at 1% loss that is some 600 packets, 300 ACKs. More
 * ranges cost every ACK wire bytes and both ends allocation: with 32, an ACK-only
 * packet on a path losing 0.6% was about 160 bytes on the uplink, and decoding ACKs
 * was 14% of what the lab's Braid relay allocated (scenario a). 6 instead of 32: 46.63
 * against 46.40 Mbit/s there (5 interleaved pairs, 4 better), both ends' CPU 5–10%
 * lower.
 */
export const MAX_ACK_RANGES = 6;
/** Delivery rate: windowed max over this many RTTs (BBR's bandwidth filter). */
const RATE_WINDOW_RTTS = 10;
/**
 * 'auto' (config.ts): a loss-based controller's loss comes when the bottleneck buffer
 * overflows, so in the round trip before a congestion event every RTT sample carries a
 * full queue — on the lab's links (a buffer of one BDP or more) twice the min RTT, and
 * still 1.4× after CUBIC's cut. When the smallest (ACK-delay adjusted) sample of the
 * last smoothed RTT is within this factor of the min RTT, there was no standing queue
 * to overflow: the loss was random (radio, a policer of no depth). The smallest recent
 * sample and not the smoothed RTT, because a busy host adds tens of ms to many samples
 * (in the lab, under load, the LTE path's srtt was 92 ms against a ~50 ms min) while a
 * standing queue delays all of them. One smoothed RTT, because with several flows at a
 * shared queue a longer window catches the dips after other flows' cuts (the
 * simulation in coupled-congestion.test.ts then switched paths at a shared bottleneck).
 */
const AUTO_NEAR_MIN_RTT = 1.3;
const AUTO_RECENT_SRTTS = 1;
/** That many such events in a row (none with the RTT inflated in between) … */
const AUTO_RANDOM_EVENTS = 3;
/**
 * … or this many once a loss came from a queue. A competing flow can keep a shared
 * queue standing for the whole life of the path, so that its min RTT includes part of
 * the queue and a full queue reads only ~1.4× that min: lab g's events sat within
 * 0.1 ms of the 1.3× line, and three in a row below it now and then moved a path that
 * shares the bottleneck with TCP to BBR (fairness 2.1–2.8× TCP in those rounds). A path
 * whose losses are random (radio) sees them every few hundred packets: doubling the
 * count delays its switch by a few more events.
 */
const AUTO_RANDOM_EVENTS_AFTER_QUEUE = 6;
/** … on a path losing at least this share of its packets make it switch to BBR. */
const AUTO_LOSS_RATE = 0.003;
/** Fewest packets sent before the loss rate is trusted. */
const AUTO_MIN_PACKETS = 300;
/** learnedSsthresh: this share of the window a loss in congestion avoidance cut. */
const LEARNED_OF_LOSS_WINDOW = 0.85;
/**
 * A path whose data was drained (suspect: no answer to its probes) keeps being probed;
 * its probe timeout backs off only up to this, so a link that comes back is found
 * within about this long (plus an RTT) rather than after seconds of RFC 9002 backoff.
 */
const DARK_PROBE_MAX_MS = 200;

export class PathRecovery<T> implements CoupledPath {
  private readonly clock: Clock;
  private readonly kind: 'udp' | 'tcp';
  private readonly mss: number;
  /** The loss-based controller in use (CUBIC for 'auto' until it switches), or 'bbr'. */
  private congestion: 'newreno' | 'cubic' | 'bbr';
  /** config 'auto' on a UDP path. */
  private readonly autoRequested: boolean;
  /** config 'auto': may still switch from CUBIC to BBR. */
  private autoSelect: boolean;
  /** 'auto': congestion events in a row that came with the RTT near its minimum. */
  private randomLossEvents = 0;
  /**
   * 'auto': a congestion event came with the RTT inflated (a queue overflowed). Until
   * then the path is not coupled: LIA would starve a path whose losses are random (it
   * moves traffic off lossy paths), and a starved path sees too few losses to be
   * judged. At a queued bottleneck the first overflow — slow start's, at the latest —
   * sets it, and LIA shapes the path from then on (slow start is never coupled).
   */
  private queueLossSeen = false;
  /** 'auto': windowed minimum of recent RTT samples, negated (a max filter). */
  private readonly recentRttMin = new WindowedMaxFilter(1000);
  /** When 'auto' switched this path to BBR (clock ms), if it did. */
  autoSwitchedAt: number | undefined = undefined;
  private readonly random: Random;
  /** The model-based controller when it is BBR on a UDP path; it owns cwnd and pacing then. */
  private bbr: Bbr | undefined;
  /**
   * Set when the outstanding data was drained (drainOutstanding: the path turned
   * suspect) and cleared by the next ACK: only probes are out, their timeout backs off
   * to DARK_PROBE_MAX_MS at most, and their loss is no congestion signal.
   */
  private dark = false;
  /**
   * BBR app-limited marking (draft-cheng-iccrg-delivery-rate-estimation §3.4,
   * C.app_limited): non-zero while packets sent in an app-limited stretch are still
   * being delivered, so their rate samples are taken as lower bounds only.
   */
  private appLimitedUntil = 0;
  /** The last packet sent left no room in the window: the gap after it was the window's doing. */
  private windowFull = false;
  private lastSendTime = -Infinity;
  /**
   * The most bytes in flight in this round trip and the one before (a round ends when a
   * packet sent after it began is acknowledged): whether the window is being used
   * (windowUsed).
   */
  private usedThisRound = 0;
  private usedLastRound = 0;
  private roundEndPn = 0;
  private readonly maxAckDelay: number;
  private readonly inflightCap: number;

  // --- sending
  private nextPn = 0;
  /** Outstanding packets in pn order; [head, sent.length) are live (acked/lost ones are set to undefined). */
  private sent: Array<SentPacket<T> | undefined> = [];
  private head = 0;
  private outstanding = 0;
  private largestAcked = -1;
  private lossTime: number | undefined;
  private ptoCount = 0;
  private lastAckElicitingSent = 0;
  /** When this path last sent a packet that asks for an ACK (an RTT sample can follow). */
  get lastAckElicitingSentAt(): number {
    return this.lastAckElicitingSent;
  }
  private lastProgress = 0;
  bytesInFlight = 0;
  packetsSent = 0;
  packetsLost = 0;
  bytesSent = 0;
  bytesAcked = 0;

  // --- RTT (RFC 9002 §5)
  srtt: number;
  rttvar: number;
  minRtt = Infinity;
  latestRtt = 0;
  /** The newest RTT sample less the peer's ACK delay (RFC 9002 §5.3 adjusted_rtt), for jitter. */
  latestAdjustedRtt = 0;
  hasRttSample = false;
  private firstRttSampleTime = 0;

  // --- congestion (RFC 9002 §7, RFC 9438)
  /**
   * Coupled congestion control (core/paths/coupled-congestion.ts): when set, the
   * congestion-avoidance increase is the group's (LIA); slow start and the loss
   * response stay this path's own. Set by CoupledGroup.add(), cleared by remove().
   */
  coupling: CongestionCoupling | undefined = undefined;
  cwnd: number;
  ssthresh = Infinity;
  private recoveryStart = -Infinity;
  private wMax = 0;
  private cubicK = 0;
  private epochStart: number | undefined;
  private wEst = 0;
  private ackedInAvoidance = 0;
  /** Ends slow start on a rising RTT instead of a burst of queue drops (RFC 9406). */
  readonly hystart = new HyStart();
  /**
   * Careful Resume (RFC 9959, careful-resume.ts): a jump from what an earlier path
   * between the same addresses measured (seedResume); off until seeded.
   */
  resume = new CarefulResume(undefined);
  /** The window the path started with (RFC 9002 §7.2): reconnaissance sends this much. */
  private readonly initialWindow: number;

  // --- pacing (RFC 9002 §7.7)
  private tokens: number;
  private tokensAt = 0;

  // --- delivery rate
  private delivered = 0;
  private deliveredTime = 0;
  private firstSentTime = 0;
  /** BBR's bandwidth filter: no allocation per ACK. */
  private readonly rateFilter = new WindowedMaxFilter(RATE_WINDOW_RTTS * 333);
  deliveryRate = 0;
  /** The newest delivery-rate sample (bytes/s), before the windowed maximum. */
  latestRateSample = 0;

  // --- receiving
  /** Received packet numbers as descending disjoint ranges [first, last]. */
  private received: AckRange[] = [];
  private largestReceivedTime = 0;
  private unackedEliciting = 0;
  private firstUnackedElicitingTime: number | undefined;
  private ackNeeded = false;

  constructor(config: RecoveryConfig, clock: Clock) {
    this.clock = clock;
    this.kind = config.kind;
    this.mss = config.maxDatagramSize;
    const requested = config.congestion ?? 'cubic';
    this.autoRequested = requested === 'auto' && config.kind === 'udp';
    this.autoSelect = this.autoRequested;
    this.congestion = requested === 'auto' ? 'cubic' : requested;
    this.random = config.random ?? systemRandom;
    this.maxAckDelay = config.maxAckDelayMs ?? 25;
    this.inflightCap = config.inflightCapBytes ?? 4 * 1024 * 1024;
    const initialRtt = config.initialRttMs ?? 333;
    this.srtt = initialRtt;
    this.rttvar = initialRtt / 2;
    // RFC 9002 §7.2: min(10 * mss, max(14720, 2 * mss)).
    this.cwnd =
      this.kind === 'tcp'
        ? this.inflightCap
        : Math.min(10 * this.mss, Math.max(14720, 2 * this.mss));
    this.initialWindow = this.cwnd;
    this.tokens = this.cwnd;
    const now = clock.now();
    this.bbr =
      this.kind === 'udp' && this.congestion === 'bbr'
        ? new Bbr({ mss: this.mss, initialCwnd: this.cwnd, random: this.random }, now)
        : undefined;
    this.tokensAt = now;
    this.lastProgress = now;
    this.deliveredTime = now;
  }

  /**
   * Starts from a scoreboard seed (paper §III-B) instead of RFC 9002's 333 ms: the PTO
   * and the schedulers see a likely RTT at once. The first real sample replaces it
   * (RFC 9002 §5.3), so a wrong seed costs nothing later.
   */
  seedRtt(srttMs: number, rttvarMs: number): void {
    if (this.hasRttSample) return;
    if (!(srttMs > 0 && Number.isFinite(srttMs) && rttvarMs >= 0 && Number.isFinite(rttvarMs))) {
      throw new BraidError('BRAID_ERR_CONFIG', 'seeded RTT must be positive and finite', {
        value: `${srttMs}/${rttvarMs}`,
      });
    }
    this.srtt = srttMs;
    this.rttvar = rttvarMs;
  }

  /**
   * Starts slow start's threshold at what an earlier path between the same addresses
   * learned (path-metrics-cache.ts, RFC 9040 §4). Only before the path sent anything;
   * ignored under BBR (no threshold) and on TCP paths (the kernel's).
   */
  seedSsthresh(bytes: number): void {
    if (this.kind === 'tcp' || this.bbr !== undefined || this.packetsSent > 0) return;
    if (!(bytes > 0) || !Number.isFinite(bytes)) return;
    this.ssthresh = Math.max(bytes, this.minWindow());
  }

  /**
   * Lets the path's window jump, after one round trip at the initial window, to half
   * of what an earlier path between the same addresses carried (Careful Resume, RFC
   * 9959). Only before the path sent anything; ignored under BBR (its startup measures
   * the path itself) and on TCP paths (the kernel's window).
   */
  seedResume(saved: ResumeSaved): void {
    if (this.kind === 'tcp' || this.bbr !== undefined || this.packetsSent > 0) return;
    this.resume = new CarefulResume(saved);
  }

  /**
   * What the next path between the same addresses may resume from (RFC 9959 §4.1):
   * the window at the capacity this one measured and its min RTT. Under CUBIC/NewReno
   * the window learnedSsthresh keeps (below where the queue overflowed); under BBR
   * twice its bandwidth-delay product (BBR's own window gain), so that a path 'auto'
   * moves to BBR still leaves its capacity behind. Undefined before either is known.
   */
  get learnedResume(): ResumeSaved | undefined {
    if (this.kind === 'tcp' || !Number.isFinite(this.minRtt)) return undefined;
    const b = this.bbr;
    const cwnd =
      b === undefined ? this.learnedSsthresh : LEARNED_OF_LOSS_WINDOW * 2 * b.bw * b.minRtt;
    if (cwnd === undefined || !(cwnd > 0) || !Number.isFinite(cwnd)) return undefined;
    return { cwnd, rttMs: this.minRtt };
  }

  /**
   * What the next path between the same addresses may start from (RFC 9040 §4): a
   * share of the largest window a loss in congestion avoidance cut, else the larger of
   * the threshold and half the window, once a threshold is set; undefined in slow start
   * and under BBR. The largest, not the last: a threshold too high costs the next path
   * one slow-start overshoot, one too low caps it for good (it then grows by CUBIC).
   * In lab f the last cut of a 20 s download fell in a busy spell of the café Wi-Fi
   * trace (22 KB), and every 1 MB download after it took 0.52-0.73 s against 0.42-0.45
   * on that Wi-Fi alone.
   */
  get learnedSsthresh(): number | undefined {
    if (this.kind === 'tcp' || this.bbr !== undefined || !Number.isFinite(this.ssthresh))
      return undefined;
    if (this.maxLossWindow > 0) return LEARNED_OF_LOSS_WINDOW * this.maxLossWindow;
    return Math.max(this.ssthresh, this.cwnd / 2);
  }

  /** The largest window a congestion event in congestion avoidance cut (0 before any). */
  private maxLossWindow = 0;

  get maxDatagramSize(): number {
    return this.mss;
  }

  /** The controller in use: 'auto' reads 'cubic' until it switched to 'bbr'. */
  get controller(): 'newreno' | 'cubic' | 'bbr' {
    return this.congestion;
  }

  /**
   * Takes the group's linked increase now, and Reno's halving once the link was shown
   * (CongestionCoupling.linkShown: pairs start linked before their first verdict):
   * coupled, with another coupled path in the group. Linked, a CUBIC path grows by
   * CUBIC_RENO_ALPHA (0.53) of LIA's increase and halves on loss (once shown):
   * AIMD(0.53, ½), about 0.73 of one Reno flow's share (an AIMD flow's rate goes as
   * √(a(1+b)/(1−b))), where CUBIC's own β = 0.7 with that increase would be one Reno
   * flow. The margin comes from measurement: at the lab's shared bottleneck (g) a Braid
   * path takes more than a kernel TCP flow with the same controller (most likely because
   * the kernel's TCP is not paced here and loses its bursts at the full drop-tail queue,
   * where Braid's paced packets slip in). With both of Braid's paths carrying traffic,
   * per 3–5 rounds of `npm run bench -- lab --fairness-only`, coupled Braid took (× the
   * competing TCP flow, median): β = 0.7: 1.35 and 1.38; RFC 6356 as written (full
   * increase, ½): 1.31; AIMD(0.53, ½): 1.02. NewReno paths are RFC 6356's as written (the simulation's goal 1 checks
   * that they get no less than one flow on the best path).
   */
  get linked(): boolean {
    return this.coupling !== undefined && this.coupled && this.coupling.linkedCount(this) > 1;
  }

  /**
   * Whether the path takes part in the LIA coupling (CoupledPath): not under BBR, which
   * paces at the rate it measures, and under 'auto' only once a loss came from a queue.
   */
  get coupled(): boolean {
    return this.bbr === undefined && (!this.autoRequested || this.queueLossSeen);
  }

  /**
   * BBR's model of the path when it is the controller (undefined for CUBIC/NewReno):
   * its state, bottleneck bandwidth and pacing rate (bytes/s), windowed min RTT (ms),
   * pacing gain and the inflight bound its loss response set (bytes, Infinity if none).
   */
  get bbrModel():
    | {
        state: BbrState;
        bandwidth: number;
        pacingRate: number;
        minRtt: number;
        pacingGain: number;
        inflightHi: number;
      }
    | undefined {
    const b = this.bbr;
    if (b === undefined) return undefined;
    return {
      state: b.state,
      bandwidth: b.bw * 1000,
      pacingRate: b.pacingRate * 1000,
      minRtt: b.minRtt,
      pacingGain: b.pacingGain,
      inflightHi: b.inflightHi,
    };
  }

  /** The probe timeout now (RFC 9002 §6.2.1), without backoff: ms. */
  get probeTimeoutMs(): number {
    return this.pto();
  }

  /** Consecutive probe timeouts without an ACK (RFC 9002 §6.2). */
  get probeTimeouts(): number {
    return this.ptoCount;
  }

  // ------------------------------------------------------------------ sending

  nextPacketNumber(): number {
    return this.nextPn++;
  }

  /** The number the next packet will get (nextPacketNumber() without taking it). */
  get upcomingPacketNumber(): number {
    return this.nextPn;
  }

  sendAllowance(): number {
    return Math.max(0, this.cwnd - this.bytesInFlight);
  }

  private pacingRate(): number {
    // BBR paces at gain × its bandwidth estimate (core/paths/bbr.ts).
    if (this.bbr !== undefined) return this.bbr.pacingRate;
    // bytes per ms; before an RTT sample pacing would be too slow, so only the burst limits.
    // In slow start the newest RTT when it is below srtt: a path's first sample often
    // carries the handshake's processing (50 ms on the lab's 15 ms cable path) and
    // srtt sheds it an eighth per sample, so slow start paced at half its intended
    // rate and no longer doubled per round. A growing queue still brakes it (srtt).
    const slowStart = this.cwnd < this.ssthresh;
    const smoothed = slowStart ? Math.min(this.srtt, this.latestRtt) : this.srtt;
    const rtt = this.hasRttSample ? Math.max(smoothed, 0.05) : 1;
    // Careful Resume's jump goes out over a round trip (RFC 9959 §4.4).
    const factor = this.resume.unvalidated ? 1 : slowStart ? 2 : 1.25;
    return (factor * this.cwnd) / rtt;
  }

  private burst(): number {
    return 10 * this.mss;
  }

  /** Earliest time the pacer lets `bytes` go; `now` when it may go at once. Callers pass their own `now` so that one decision uses one clock reading. */
  nextSendTime(bytes: number, now: number = this.clock.now()): number {
    if (this.kind === 'tcp') return now;
    this.refill(now);
    if (this.tokens >= bytes) return now;
    return now + (bytes - this.tokens) / this.pacingRate();
  }

  private refill(now: number): void {
    const elapsed = now - this.tokensAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst(), this.tokens + elapsed * this.pacingRate());
      this.tokensAt = now;
    }
  }

  onPacketSent(pn: number, bytes: number, ackEliciting: boolean, token: T): void {
    const now = this.clock.now();
    this.packetsSent++;
    this.bytesSent += bytes;
    if (this.kind === 'udp') {
      this.refill(now);
      if (this.bbr !== undefined && ackEliciting) this.checkAppLimited(now);
      this.tokens -= bytes;
    }
    // Only ack-eliciting packets are tracked: the peer need not acknowledge the others
    // (RFC 9002 §2), so they can neither be lost nor carry a sample.
    if (!ackEliciting) return;
    if (this.outstanding === 0) {
      // Delivery-rate sampling: restart the send interval after an idle period.
      this.firstSentTime = now;
      this.deliveredTime = now;
    }
    const packet: SentPacket<T> = {
      pn,
      bytes,
      time: now,
      ackEliciting,
      inFlight: ackEliciting,
      token,
      delivered: this.delivered,
      deliveredTime: this.deliveredTime,
      firstSentTime: this.firstSentTime,
      appLimited:
        this.bbr !== undefined
          ? this.appLimitedUntil !== 0
          : this.bytesInFlight + bytes < this.cwnd / 2,
      txInFlight: this.bytesInFlight + bytes,
      dark: this.dark,
      startup: this.largestAcked < this.startupEndPn,
    };
    // Packet numbers are dense per path; index = pn - base.
    if (this.outstanding === 0) {
      this.sent.length = 0;
      this.head = 0;
      this.base = pn;
    }
    this.sent[pn - this.base] = packet;
    this.resume.onSent(pn);
    this.outstanding++;
    this.bytesInFlight += bytes;
    if (this.bytesInFlight > this.usedThisRound) this.usedThisRound = this.bytesInFlight;
    this.lastAckElicitingSent = now;
    if (this.bytesInFlight === bytes) this.lastProgress = now;
    if (this.bbr !== undefined) {
      this.windowFull = this.bytesInFlight + this.mss > this.cwnd;
      this.lastSendTime = now;
    }
  }

  /**
   * BBR needs to know when a rate sample says less than the path can carry because the
   * sender had nothing to send (draft-cheng-iccrg-delivery-rate-estimation §3.4). The
   * session layer does not tell us, so it is inferred: the pipe was empty, or the pacer
   * sat with a full bucket for two bursts' time while the window had room — a sender
   * with data waiting would have used either. Called before the packet is counted.
   */
  private checkAppLimited(now: number): void {
    const burstTime = this.burst() / this.pacingRate();
    const idle =
      this.bytesInFlight === 0 ||
      // tcp_bbr.c bbr_update_min_rtt: probe-RTT starves the pipe on purpose.
      this.bbr?.state === 'probe-rtt' ||
      (!this.windowFull && this.tokens >= this.burst() && now - this.lastSendTime > 2 * burstTime);
    if (idle) this.appLimitedUntil = Math.max(this.delivered + this.bytesInFlight, 1);
  }

  /** pn of sent[0]. */
  private base = 0;

  private packetAt(pn: number): SentPacket<T> | undefined {
    const i = pn - this.base;
    return i >= this.head && i < this.sent.length ? this.sent[i] : undefined;
  }

  private removeAt(pn: number): void {
    this.sent[pn - this.base] = undefined;
    this.outstanding--;
    while (this.head < this.sent.length && this.sent[this.head] === undefined) this.head++;
    // Compact so the array does not grow without bound.
    if (this.head > 4096 && this.head * 2 > this.sent.length) {
      this.sent = this.sent.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
  }

  onAck(
    ranges: readonly AckRange[],
    ackDelayMicros: number,
  ): { acked: T[]; lost: T[]; startupLost: number; rttSample: number | undefined } | BraidError {
    const now = this.clock.now();
    const first = ranges[0];
    if (first === undefined) return { acked: [], lost: [], startupLost: 0, rttSample: undefined };
    if (first.last >= this.nextPn) {
      return new BraidError('BRAID_ERR_WIRE_BAD_VALUE', 'ACK for a packet never sent', {
        value: first.last,
      });
    }
    const acked: T[] = [];
    let largestNewly: SentPacket<T> | undefined;
    let ackedEliciting = false;
    let newestAckedBytes = 0;
    let sample: SentPacket<T> | undefined;
    const priorInFlight = this.bytesInFlight;
    // Ranges are descending; walk each range over the live window only.
    const lowLive = this.base + this.head;
    for (const range of ranges) {
      const lo = Math.max(range.first, lowLive);
      for (let pn = Math.min(range.last, this.base + this.sent.length - 1); pn >= lo; pn--) {
        const p = this.packetAt(pn);
        if (p === undefined) continue;
        if (largestNewly === undefined) largestNewly = p;
        if (p.ackEliciting) ackedEliciting = true;
        if (p.inFlight) this.bytesInFlight -= p.bytes;
        this.bytesAcked += p.bytes;
        newestAckedBytes += p.bytes;
        this.delivered += p.bytes;
        if (sample === undefined || p.delivered > sample.delivered) sample = p;
        acked.push(p.token);
        this.removeAt(pn);
        if (p.inFlight) this.resume.onPacketAcked(pn, p.bytes);
        this.onCongestionAck(p, now);
      }
    }
    if (first.last > this.largestAcked) this.largestAcked = first.last;
    if (this.largestAcked >= this.roundEndPn) {
      this.usedLastRound = this.usedThisRound;
      this.usedThisRound = this.bytesInFlight;
      this.roundEndPn = this.nextPn;
    }
    let rttSample: number | undefined;
    if (largestNewly !== undefined && largestNewly.pn === first.last && ackedEliciting) {
      rttSample = now - largestNewly.time;
      this.updateRtt(rttSample, ackDelayMicros / 1000, now);
    }
    if (acked.length > 0) {
      this.dark = false;
      this.deliveredTime = now;
      this.lastProgress = now;
      this.ptoCount = 0;
      if (sample !== undefined) {
        this.sampleRate(sample, now);
        // draft-cheng-iccrg-delivery-rate-estimation §3.2: later packets measure their
        // send interval from the newest packet acknowledged so far.
        this.firstSentTime = sample.time;
      }
    }
    if (this.appLimitedUntil !== 0 && this.delivered > this.appLimitedUntil)
      this.appLimitedUntil = 0;
    if (
      largestNewly !== undefined &&
      this.kind === 'udp' &&
      this.bbr === undefined &&
      this.cwnd < this.ssthresh &&
      largestNewly.time > this.recoveryStart &&
      this.hystart.onAck(largestNewly.pn, this.nextPn, rttSample)
    )
      this.ssthresh = this.cwnd;
    const lost = this.detectLoss(now);
    // Careful Resume moves on after loss detection: a loss this ACK reveals among the
    // jump's packets is a safe retreat even when the ACK acknowledges the rest. (Under
    // BBR resume is over for good: seedResume refuses it, switchToBbr abandons it.)
    if (this.resume.phase !== 'normal') {
      const set = this.resume.onAckProcessed(this.bytesInFlight);
      if (set !== undefined) this.cwnd = Math.max(set, this.minWindow());
    }
    if (this.resume.phase === 'reconnaissance' && this.hasRttSample) {
      const jump = this.resume.maybeJump(this.latestRtt, this.cwnd, this.initialWindow);
      if (jump !== undefined) {
        this.cwnd = jump;
        // Slow start goes on from the jump, but not past what the earlier path carried.
        this.ssthresh = Math.min(this.ssthresh, this.resume.savedCwnd!);
      }
    }
    if (this.bbr !== undefined && newestAckedBytes > 0) {
      // tcp_bbr.c takes no rate sample over an interval shorter than the min RTT: ACK
      // compression (a busy event loop, delayed ACKs) would inflate it, and the
      // bandwidth filter keeps the maximum.
      const rate =
        sample !== undefined && this.rateInterval >= this.minRtt
          ? (this.delivered - sample.delivered) / this.rateInterval
          : undefined;
      this.bbr.onAck({
        now,
        ackedBytes: newestAckedBytes,
        delivered: this.delivered,
        priorDelivered: sample?.delivered ?? -1,
        rate,
        appLimited: sample?.appLimited ?? false,
        rtt: rttSample,
        priorInFlight,
        inFlight: this.bytesInFlight,
      });
      this.cwnd = this.bbr.cwnd;
      if (this.autoSwitchedAt !== undefined && this.coupling?.linkShown(this) === true)
        this.switchBackToCubic(now);
    }
    return { acked, lost, startupLost: this.detectedStartupLost, rttSample };
  }

  private updateRtt(latest: number, ackDelay: number, now: number): void {
    // RFC 9002 §5.3
    this.latestRtt = latest;
    this.latestAdjustedRtt = latest;
    if (!this.hasRttSample) {
      this.hasRttSample = true;
      this.minRtt = latest;
      this.srtt = latest;
      this.rttvar = latest / 2;
      this.firstRttSampleTime = now;
      return;
    }
    this.minRtt = Math.min(this.minRtt, latest);
    const delay = Math.min(ackDelay, this.maxAckDelay);
    const adjusted = latest >= this.minRtt + delay ? latest - delay : latest;
    this.latestAdjustedRtt = adjusted;
    if (this.autoSelect)
      this.recentRttMin.update(-adjusted, now, Math.max(AUTO_RECENT_SRTTS * this.srtt, 20));
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - adjusted);
    this.srtt = 0.875 * this.srtt + 0.125 * adjusted;
    // Shared-bottleneck detection judges queues in congestion avoidance only: two slow
    // starts overshoot at different moments even where they fill one queue. A path that
    // 'auto' moved to BBR keeps reporting once past BBR's startup, so that a bottleneck
    // it shares can still be shown (and it then goes back to CUBIC, onAck).
    if (
      this.coupling !== undefined &&
      (this.bbr === undefined
        ? this.cwnd >= this.ssthresh
        : this.autoSwitchedAt !== undefined && this.bbr.state !== 'startup')
    )
      this.coupling.observeQueueDelay(this, adjusted - this.minRtt, now);
  }

  /** The interval of the newest delivery-rate sample, ms (0 when it gave none). */
  private rateInterval = 0;

  private sampleRate(p: SentPacket<T>, now: number): void {
    // draft-cheng-iccrg-delivery-rate-estimation §3.3
    const sendElapsed = p.time - p.firstSentTime;
    const ackElapsed = now - p.deliveredTime;
    const interval = Math.max(sendElapsed, ackElapsed);
    this.rateInterval = interval;
    if (interval <= 0) return;
    const rate = ((this.delivered - p.delivered) / interval) * 1000;
    this.latestRateSample = rate;
    if (p.appLimited && rate < this.deliveryRate) return;
    const window = RATE_WINDOW_RTTS * Math.max(this.srtt, 1);
    this.deliveryRate = this.rateFilter.update(rate, now, window);
  }

  /**
   * Lost packets, of those detectLoss last declared, that left in the path's startup:
   * before its first loss was detected, or in the round trip after (the window cut
   * from slow start's overshoot can still be above what the path holds). Those losses
   * are slow start's (or BBR startup's) overshoot of the bottleneck's queue: they tell
   * how far the window doubled past it, not how lossy the path is, and the path's loss
   * figure (PathEstimator, the loss stage of the schedulers) leaves them out. In lab a
   * one Wi-Fi path lost 249 of its first 819 packets so; read as a 33 % loss rate, the
   * loss stage of the default ['loss', 'throughput'] policy dropped it and it carried
   * nothing for the rest of the 10 s window: 19.5 Mbit/s, below Wi-Fi alone.
   */
  private detectedStartupLost = 0;
  /**
   * The next packet number when the first loss was detected: startup ends once this
   * packet or a later one is acknowledged (packets are startup while largestAcked is
   * below it).
   */
  private startupEndPn = Infinity;

  private detectLoss(now: number): T[] {
    // RFC 9002 §6.1
    const lost: T[] = [];
    this.lossTime = undefined;
    this.detectedStartupLost = 0;
    if (this.kind === 'tcp' || this.largestAcked < 0) return lost;
    const delay = Math.max(TIME_THRESHOLD * Math.max(this.latestRtt, this.srtt), GRANULARITY_MS);
    let largestLost: SentPacket<T> | undefined;
    let firstLost: SentPacket<T> | undefined;
    const end = Math.min(this.sent.length, this.largestAcked - this.base + 1);
    for (let i = this.head; i < end; i++) {
      const p = this.sent[i];
      if (p === undefined) continue;
      // `p.time + delay` exactly as lossTime is computed below: comparing `p.time` with
      // `now - delay` instead can differ by a rounding step, leaving lossTime <= now with
      // nothing declared lost — a timer that fires again at once, forever.
      if (p.time + delay <= now || this.largestAcked >= p.pn + PACKET_THRESHOLD) {
        if (p.inFlight) this.bytesInFlight -= p.bytes;
        this.packetsLost++;
        lost.push(p.token);
        if (p.startup) this.detectedStartupLost++;
        // Probes into a dark path (drainOutstanding) found no queue: not congestion.
        if (!p.dark) {
          this.bbr?.onLoss(p.bytes, p.txInFlight);
          if (firstLost === undefined) firstLost = p;
          largestLost = p;
        }
        this.removeAt(p.pn);
      } else {
        const t = p.time + delay;
        if (this.lossTime === undefined || t < this.lossTime) this.lossTime = t;
      }
    }
    if (lost.length > 0 && this.startupEndPn === Infinity) this.startupEndPn = this.nextPn;
    if (largestLost !== undefined && firstLost !== undefined) {
      this.onCongestionEvent(largestLost.time, now);
      // RFC 9002 §7.6: persistent congestion when losses span a long period.
      if (this.hasRttSample && firstLost.time > this.firstRttSampleTime) {
        const pc =
          (this.srtt + Math.max(4 * this.rttvar, GRANULARITY_MS) + this.maxAckDelay) *
          PERSISTENT_CONGESTION_THRESHOLD;
        if (largestLost.time - firstLost.time > pc) this.onPersistentCongestion();
      }
    }
    return lost;
  }

  // ------------------------------------------------------------ congestion

  private minWindow(): number {
    return 2 * this.mss;
  }

  /**
   * RFC 9002 §7.8: a window the sender does not use is not grown. Used means at least
   * half of it was in flight at some point in this round trip or the last, the rule of
   * Linux's slow start (tcp_is_cwnd_limited: cwnd < 2 x max_packets_out), taken for
   * congestion avoidance too, which Linux grows only when the window was full: a paced
   * path's flight stays below its window. Else a path that the scheduler, the host's
   * CPU or the app holds back grows its window with every byte acknowledged (12-30 MB
   * windows with 1-3 MB in flight on loopback), and the schedulers, which read cwnd/RTT
   * as what a path could carry, give whichever path was acknowledged more a still
   * larger share.
   */
  private windowUsed(): boolean {
    return 2 * Math.max(this.usedThisRound, this.usedLastRound) >= this.cwnd;
  }

  private onCongestionAck(p: SentPacket<T>, now: number): void {
    // BBR's window follows its model, per ACK (onAck), not per packet.
    if (this.kind === 'tcp' || this.bbr !== undefined || !p.inFlight) return;
    if (p.time <= this.recoveryStart) return;
    // Nor while a Careful Resume jump is unvalidated (RFC 9959 §4.4).
    if (!this.windowUsed() || this.resume.unvalidated) return;
    if (this.cwnd < this.ssthresh) {
      this.cwnd += this.hystart.growth(p.bytes);
      return;
    }
    // The LIA coupling shapes only the loss-based controllers' increase. Coupled BBR
    // is out of scope: a BBR path may sit in a CoupledGroup but never takes the
    // group's increase (this function returns above for it); its fairness at a shared
    // bottleneck comes from pacing at the share it measures, as BBR flows among TCP ones.
    // A path left alone in its group (the others under BBR, or gone) is one flow: its own
    // CUBIC increase, not LIA's Reno-friendly one at 0.53 of Reno.
    if (this.linked) {
      // RFC 6356 §3 linked increase. A CUBIC path keeps its Reno-friendly factor on it,
      // and halves on loss like RFC 6356's paths (onCongestionEvent): see linked.
      const inc = this.coupling!.increase(this, p.bytes);
      this.cwnd += this.congestion === 'cubic' ? CUBIC_RENO_ALPHA * inc : inc;
      // If the path is uncoupled later, CUBIC starts a fresh epoch from this window.
      this.epochStart = undefined;
      return;
    }
    if (this.congestion === 'newreno') {
      // RFC 9002 §7.3.3: one MSS per cwnd of acknowledged bytes.
      this.ackedInAvoidance += p.bytes;
      if (this.ackedInAvoidance >= this.cwnd) {
        this.ackedInAvoidance -= this.cwnd;
        this.cwnd += this.mss;
      }
      return;
    }
    // CUBIC, RFC 9438 §4.2–4.3, windows in segments, time in seconds.
    if (this.epochStart === undefined) {
      this.epochStart = now;
      const cwndSeg = this.cwnd / this.mss;
      const wMaxSeg = Math.max(this.wMax / this.mss, cwndSeg);
      this.cubicK = Math.cbrt((wMaxSeg - cwndSeg) / CUBIC_C);
      this.wEst = this.cwnd;
    }
    const t = (now - this.epochStart) / 1000;
    const rtt = Math.max(this.srtt, 0.1) / 1000;
    const wMaxSeg = Math.max(this.wMax, this.cwnd) / this.mss;
    const target = (CUBIC_C * Math.pow(t + rtt - this.cubicK, 3) + wMaxSeg) * this.mss;
    // Reno-friendly estimate (RFC 9438 §4.3).
    this.wEst += ((3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA)) * (p.bytes / this.cwnd) * this.mss;
    let next = this.cwnd;
    if (target > this.cwnd)
      next = this.cwnd + ((Math.min(target, 1.5 * this.cwnd) - this.cwnd) / this.cwnd) * p.bytes;
    if (this.wEst > next) next = this.wEst;
    this.cwnd = next;
  }

  private onCongestionEvent(sentTime: number, now: number): void {
    // BBR counts losses per round instead (Bbr.onLoss) and does not halve.
    if (this.kind === 'tcp' || this.bbr !== undefined || sentTime <= this.recoveryStart) return;
    this.recoveryStart = now;
    this.hystart.reset();
    // A path whose queue was measured to be shared with another path's loses to
    // congestion there, whatever its RTT at the loss looked like: it stays loss-based
    // and coupled (in one fairness round of lab g, 'auto' moved such a path to BBR and
    // the association took 1.98x the competing TCP flow).
    const shown = this.linked && this.coupling!.linkShown(this);
    if (this.autoSelect && this.lossLooksRandom() && !shown) {
      this.switchToBbr(now);
      return;
    }
    // A loss while a Careful Resume jump is unvalidated or validating: the safe retreat
    // (RFC 9959 §4.6) caps the cut below at half of what the path delivered since the
    // jump.
    const retreat = this.resume.onCongestion();
    const cap = retreat ?? Infinity;
    // Slow start's window at its loss overshot by up to a round trip of doubling; a
    // loss in congestion avoidance finds the window the path holds (a jump's window,
    // from an earlier path, does not).
    if (retreat === undefined && this.cwnd >= this.ssthresh && this.cwnd > this.maxLossWindow)
      this.maxLossWindow = this.cwnd;
    // The cut below drains this path's queue: whether the other paths' queues drain
    // with it is what shows a shared bottleneck (shared-bottleneck.ts, cut trials).
    this.coupling?.congestionEvent(this, now);
    if (this.congestion === 'newreno' || shown) {
      // RFC 6356's halving on a linked path (see linked) once the link was shown: a pair
      // is linked from the start, but until a cut trial shows the link CUBIC keeps its
      // own β (linkShown). CUBIC resumes from here with a fresh epoch if the path is left
      // alone in its group.
      this.wMax = this.cwnd;
      this.epochStart = undefined;
      this.ssthresh = Math.max(Math.min(this.cwnd / 2, cap), this.minWindow());
      this.cwnd = this.ssthresh;
      this.ackedInAvoidance = 0;
      return;
    }
    // RFC 9438 §4.6–4.7 with fast convergence.
    this.wMax = this.cwnd < this.wMax ? (this.cwnd * (1 + CUBIC_BETA)) / 2 : this.cwnd;
    this.ssthresh = Math.max(Math.min(this.cwnd * CUBIC_BETA, cap), this.minWindow());
    this.cwnd = this.ssthresh;
    this.epochStart = undefined;
  }

  /**
   * 'auto': judged at each congestion event. Random when the smallest RTT of the last
   * round trip is near the minimum and the newest RTT sample is within rttvar of that
   * (no queue overflowed), AUTO_RANDOM_EVENTS times in a row (once a loss came from a
   * queue, AUTO_RANDOM_EVENTS_AFTER_QUEUE), on a path whose loss rate is AUTO_LOSS_RATE
   * or more. One event with the RTT inflated starts the count again: at a shared or
   * deep-buffered bottleneck the path stays loss-based and coupled, which is what keeps
   * it fair to TCP there.
   */
  private lossLooksRandom(): boolean {
    if (!this.hasRttSample || !Number.isFinite(this.minRtt)) return false;
    const recentMin = -this.recentRttMin.value;
    const near = AUTO_NEAR_MIN_RTT * this.minRtt;
    // The packet whose ACK revealed the loss left just after the lost one: at a
    // drop-tail queue that overflowed it waited behind a full queue. By the time the
    // loss is known, the flows that lost there may have cut and drained the queue, so
    // the last round trip's minimum can be near the path's again (lab g: a 30 ms shared
    // queue on a 30 ms path; every loss looked random and the "coupled" paths never
    // coupled: 1.6-1.9x the competing TCP flow). rttvar allows for a radio's jitter.
    const queued = this.latestRtt > near + this.rttvar;
    if (recentMin <= near && !queued) this.randomLossEvents++;
    else {
      this.randomLossEvents = 0;
      this.queueLossSeen = true;
    }
    return (
      this.randomLossEvents >=
        (this.queueLossSeen ? AUTO_RANDOM_EVENTS_AFTER_QUEUE : AUTO_RANDOM_EVENTS) &&
      this.packetsSent >= AUTO_MIN_PACKETS &&
      this.packetsLost >= AUTO_LOSS_RATE * this.packetsSent
    );
  }

  /**
   * Hands the path to BBR for the rest of its life: it starts from the current window
   * (not halved for the loss that decided it) and its startup measures the path anew.
   */
  private switchToBbr(now: number): void {
    this.autoSelect = false;
    this.resume.abandon();
    this.autoSwitchedAt = now;
    this.congestion = 'bbr';
    this.bbr = new Bbr(
      { mss: this.mss, initialCwnd: Math.max(this.cwnd, 4 * this.mss), random: this.random },
      now,
    );
    this.cwnd = this.bbr.cwnd;
    this.ssthresh = Infinity;
    this.epochStart = undefined;
    // Packets already out were sent under CUBIC; BBR's app-limited marking starts now.
    this.appLimitedUntil = 0;
  }

  /**
   * 'auto' moved this path to BBR on losses that looked random, and its queue has since
   * been shown to be shared with a coupled path: those losses were congestion at that
   * queue, where BBR, uncoupled, takes more than one TCP flow's share (lab g: in two of
   * five coupled rounds a path went to BBR before the pair's first judged window, and
   * the session took 2.31x and 2.58x the competing flow). It goes back to CUBIC,
   * coupled, from BBR's window, and 'auto' does not move it again.
   */
  private switchBackToCubic(now: number): void {
    const cwnd = Math.max(this.bbr!.cwnd, this.minWindow());
    this.bbr = undefined;
    this.congestion = 'cubic';
    this.autoSelect = false;
    this.autoSwitchedAt = undefined;
    this.autoSwitchedBack++;
    this.queueLossSeen = true;
    this.cwnd = cwnd;
    this.ssthresh = cwnd;
    this.wMax = cwnd;
    this.epochStart = undefined;
    // Losses of what BBR sent are no new congestion event for CUBIC.
    this.recoveryStart = now;
  }

  /** Times this path went back from BBR to CUBIC (switchBackToCubic). */
  autoSwitchedBack = 0;

  private onPersistentCongestion(): void {
    if (this.bbr !== undefined) {
      this.bbr.onPersistentCongestion();
      this.cwnd = this.bbr.cwnd;
      return;
    }
    this.cwnd = this.minWindow();
    this.epochStart = undefined;
    this.wMax = 0;
    this.hystart.reset();
    this.resume.abandon();
  }

  // ----------------------------------------------------------------- timers

  private pto(): number {
    // RFC 9002 §6.2.1
    return this.srtt + Math.max(4 * this.rttvar, GRANULARITY_MS) + this.maxAckDelay;
  }

  timerDeadline(): number | undefined {
    if (this.lossTime !== undefined) return this.lossTime;
    if (this.bytesInFlight <= 0) return undefined;
    if (this.kind === 'tcp') return this.lastProgress + this.stallTimeout();
    const backoff = this.pto() * Math.pow(2, this.ptoCount);
    const cap = Math.max(this.pto(), DARK_PROBE_MAX_MS);
    return this.lastAckElicitingSent + (this.dark ? Math.min(backoff, cap) : backoff);
  }

  private stallTimeout(): number {
    return Math.max(3 * this.srtt + 4 * this.rttvar, 200);
  }

  onTimer(): { lost: T[]; startupLost: number; probe: number; stalled: boolean } {
    const now = this.clock.now();
    if (this.lossTime !== undefined && this.lossTime <= now) {
      const lost = this.detectLoss(now);
      return { lost, startupLost: this.detectedStartupLost, probe: 0, stalled: false };
    }
    if (this.kind === 'tcp') {
      const stalled = this.bytesInFlight > 0 && now - this.lastProgress >= this.stallTimeout();
      if (stalled) this.lastProgress = now;
      return { lost: [], startupLost: 0, probe: 0, stalled };
    }
    if (this.bytesInFlight > 0) {
      // RFC 9002 §6.2.4: one or two probes; backoff doubles the next PTO.
      this.ptoCount++;
      return { lost: [], startupLost: 0, probe: this.ptoCount > 1 ? 2 : 1, stalled: false };
    }
    return { lost: [], startupLost: 0, probe: 0, stalled: false };
  }

  /** Calls `fn` with each packet still outstanding (neither acknowledged nor lost) and when it left. */
  forEachOutstanding(fn: (token: T, sentAt: number) => void): void {
    for (let i = this.head; i < this.sent.length; i++) {
      const p = this.sent[i];
      if (p !== undefined) fn(p.token, p.time);
    }
  }

  drainOutstanding(): T[] {
    const tokens: T[] = [];
    this.forEachOutstanding((token) => tokens.push(token));
    this.sent = [];
    this.head = 0;
    this.outstanding = 0;
    this.bytesInFlight = 0;
    this.lossTime = undefined;
    this.ptoCount = 0;
    if (this.kind === 'udp') this.dark = true;
    return tokens;
  }

  // -------------------------------------------------------------- receiving

  onPacketReceived(pn: number, ackEliciting: boolean): boolean {
    const now = this.clock.now();
    const r = this.received;
    const top = r[0];
    let outOfOrder = false;
    if (top === undefined || pn > top.last) {
      if (top !== undefined && pn === top.last + 1) top.last = pn;
      else {
        outOfOrder = top !== undefined;
        r.unshift({ first: pn, last: pn });
        if (r.length > MAX_RECEIVED_RANGES) r.length = MAX_RECEIVED_RANGES;
      }
      this.largestReceivedTime = now;
    } else {
      outOfOrder = true;
      this.insertReceived(pn);
    }
    if (!ackEliciting) return false;
    this.unackedEliciting++;
    if (this.firstUnackedElicitingTime === undefined) this.firstUnackedElicitingTime = now;
    // RFC 9000 §13.2.1–13.2.2: every second ack-eliciting packet, or at once on reordering.
    if (outOfOrder || this.unackedEliciting >= 2) this.ackNeeded = true;
    return this.ackNeeded;
  }

  private insertReceived(pn: number): void {
    const r = this.received;
    for (let i = 0; i < r.length; i++) {
      const range = r[i]!;
      if (pn > range.last) {
        if (pn === range.last + 1) {
          range.last = pn;
          const above = r[i - 1];
          if (above !== undefined && above.first === pn + 1) {
            above.first = range.first;
            r.splice(i, 1);
          }
        } else {
          const above = r[i - 1];
          if (above !== undefined && above.first === pn + 1) above.first = pn;
          else r.splice(i, 0, { first: pn, last: pn });
        }
        return;
      }
      if (pn >= range.first) return;
      if (pn === range.first - 1) {
        range.first = pn;
        const below = r[i + 1];
        if (below !== undefined && below.last === pn - 1) {
          range.first = below.first;
          r.splice(i + 1, 1);
        }
        return;
      }
    }
    if (r.length < MAX_RECEIVED_RANGES) r.push({ first: pn, last: pn });
  }

  ackDeadline(): number | undefined {
    if (this.firstUnackedElicitingTime === undefined) return undefined;
    return this.firstUnackedElicitingTime + this.maxAckDelay;
  }

  buildAck(pathId: number): AckFrame | undefined {
    if (this.received.length === 0) return undefined;
    const now = this.clock.now();
    const n = Math.min(this.received.length, MAX_ACK_RANGES);
    const ranges: AckRange[] = new Array<AckRange>(n);
    for (let i = 0; i < n; i++) {
      const r = this.received[i]!;
      ranges[i] = { first: r.first, last: r.last };
    }
    this.unackedEliciting = 0;
    this.firstUnackedElicitingTime = undefined;
    this.ackNeeded = false;
    return {
      type: 'ack',
      pathId,
      ackDelayMicros: Math.max(0, Math.round((now - this.largestReceivedTime) * 1000)),
      ranges,
    };
  }
}
