import type { Random } from '../util/clock.js';
import { WindowedMaxFilter } from './windowed-filter.js';

/**
 * A model-based congestion controller in the manner of BBR (Cardwell et al., "BBR:
 * Congestion-Based Congestion Control", ACM Queue 2016; draft-cardwell-iccrg-bbr-
 * congestion-control; Linux net/ipv4/tcp_bbr.c). It does not read loss as the signal
 * of congestion: it keeps a model of the path — the bottleneck bandwidth (windowed
 * maximum of delivery-rate samples) and the round-trip propagation delay (windowed
 * minimum RTT) — and sends at gain × bandwidth with at most cwnd_gain × BDP in flight.
 * A 1% random loss on an LTE link therefore costs about 1% of the rate, where CUBIC
 * or Reno, which halve (or take 30% off) on every loss, settle at a few Mbit/s.
 *
 * From BBRv2/v3 (draft-cardwell-iccrg-bbr-congestion-control-02, tcp_bbr.c v3) it
 * takes the loss response that keeps it from hammering a shallow buffer: a round of
 * bandwidth probing whose loss rate exceeds 2% (BBRLossThresh) bounds inflight
 * (`inflightHi`) at what was in flight when the lost packets left, and later probing
 * raises the bound again. Losses below the threshold, or while cruising at the
 * measured rate, change nothing — no halving, no recovery window.
 *
 * Known limits (measured on the simulated link): against CUBIC filling a deep buffer
 * (4 BDP) it yields most of the link, as BBRv2 does, since the queue CUBIC keeps
 * hides the propagation delay for the first min-RTT window; and a 5-packet buffer
 * sees about 2–3% loss from its probes.
 *
 * Left out on purpose: ECN (Braid's UDP paths do not read it), BBRv2's short-term
 * `bw_lo`/`inflight_lo` bounds (they react to every lossy round, which is exactly
 * what random loss must not trigger), and packet conservation in recovery.
 *
 * Pure: it is driven by the events PathRecovery passes in, with their times; nothing
 * reads a clock. Units: bytes, milliseconds, bytes per millisecond.
 */

export type BbrState = 'startup' | 'drain' | 'probe-bw' | 'probe-rtt';

export interface BbrConfig {
  /** Packet size in bytes (the window floor and quantisation are counted in these). */
  mss: number;
  /** The window before any measurement (RFC 9002 §7.2's initial window). */
  initialCwnd: number;
  /** Picks the phase a probe-bandwidth cycle starts in (tcp_bbr.c bbr_reset_probe_bw_mode). */
  random: Random;
}

/** One ACK's worth of news, as PathRecovery sees it. */
export interface BbrAck {
  now: number;
  /** Bytes newly acknowledged by this ACK. */
  ackedBytes: number;
  /** Bytes delivered on the path so far, this ACK included. */
  delivered: number;
  /** `delivered` when the newest acknowledged packet was sent: rounds are counted by it. */
  priorDelivered: number;
  /**
   * Delivery-rate sample in bytes/ms (draft-cheng-iccrg-delivery-rate-estimation),
   * or undefined when this ACK gives none (or one over an interval shorter than the
   * minimum RTT, which ACK compression inflates).
   */
  rate: number | undefined;
  /** The sample was taken while the sender had too little to send to fill the pipe. */
  appLimited: boolean;
  /** RTT of the newest acknowledged packet, ms, if this ACK gave one. */
  rtt: number | undefined;
  /** Bytes in flight before this ACK was processed. */
  priorInFlight: number;
  /** Bytes in flight after this ACK and the loss detection it triggered. */
  inFlight: number;
}

/** tcp_bbr.c bbr_high_gain is 2/ln 2 ≈ 2.885; BBRv3 and the draft use 4·ln 2 ≈ 2.77. */
export const BBR_STARTUP_GAIN = 2.77;
/** Startup ends when the bandwidth grew less than this over BBR_FULL_BW_ROUNDS rounds. */
const FULL_BW_GROWTH = 1.25;
const FULL_BW_ROUNDS = 3;
/** draft-cardwell §4.2.3 ProbeBW gain cycle: probe up, drain the probe's queue, cruise ×6. */
export const BBR_PROBE_BW_GAINS: readonly number[] = [1.25, 0.75, 1, 1, 1, 1, 1, 1];
const CWND_GAIN = 2;
/** The bandwidth filter's window, in rounds (tcp_bbr.c bbr_bw_rtts). */
const BW_WINDOW_ROUNDS = 10;
/** The min-RTT filter's window and what probe-RTT does (tcp_bbr.c). */
export const BBR_MIN_RTT_WINDOW_MS = 10_000;
export const BBR_PROBE_RTT_MS = 200;
const MIN_CWND_PACKETS = 4;
/** tcp_bbr.c bbr_pacing_margin_percent: pace 1% below the estimate so queues drain. */
const PACING_MARGIN = 0.99;
/** BBRv2 BBRLossThresh: a round losing more than this share of its packets was too much. */
export const BBR_LOSS_THRESH = 0.02;
/**
 * Fewest lost packets in a round for it to count as lossy: with ~50 packets a round,
 * 1% random loss has 2 in a round one round in ten, 3 one round in seventy. BBRv2's
 * startup asks for 8 loss events (bbr_full_loss_cnt) for the same reason.
 */
const LOSS_MIN_PACKETS = 3;
/** BBRv2 BBRBeta: a lossy round leaves at least this share of one BDP as the bound. */
const LOSS_BETA = 0.7;
/**
 * BBRv2 BBRHeadroom: outside probing, leave this share of `inflightHi` to other flows
 * — but never cut below one BDP of our own estimate, which alone on a shallow buffer
 * would leave the link idle (0.85 of a bound at 1.1 BDP starves a 0.1 BDP buffer).
 */
const HEADROOM = 0.15;
/** ACK aggregation (tcp_bbr.c bbr_update_ack_aggregation): window in rounds, cap in ms of bandwidth. */
const EXTRA_ACKED_WINDOW_ROUNDS = 5;
const EXTRA_ACKED_MAX_MS = 100;
/** tcp_bbr.c bbr_quantization_budget: room for a few packets beyond the BDP. */
const QUANTIZATION_PACKETS = 3;

export class Bbr {
  private readonly mss: number;
  private readonly initialCwnd: number;
  private readonly random: Random;

  state: BbrState = 'startup';
  /** Congestion window, bytes. */
  cwnd: number;
  /** Pacing rate, bytes/ms. */
  pacingRate: number;
  private seenRtt = false;
  pacingGain = BBR_STARTUP_GAIN;
  cwndGain = CWND_GAIN;

  // --- model
  private readonly bwFilter = new WindowedMaxFilter(BW_WINDOW_ROUNDS);
  /** Windowed min RTT, ms (Infinity before a sample). */
  minRtt = Infinity;
  private minRttStamp: number;

  // --- rounds (draft-cardwell §4.5.1: counted by delivered bytes, not time)
  roundCount = 0;
  private nextRoundDelivered = 0;
  private roundStart = false;

  // --- startup
  fullBwReached = false;
  private fullBw = 0;
  private fullBwCount = 0;

  // --- probe-bw
  private cycleIndex = 0;
  private cycleStamp = 0;
  /** Rounds spent probing up in this cycle (BBRv2 bw_probe_up_rounds). */
  private probeUpRounds = 0;
  private probeUpAcked = 0;

  // --- probe-rtt
  private probeRttDoneStamp: number | undefined;
  private probeRttRoundDone = false;
  private priorCwnd = 0;

  // --- loss (BBRv2)
  /** Upper bound on bytes in flight learned from lossy rounds; Infinity until one. */
  inflightHi = Infinity;
  private roundLostBytes = 0;
  private roundLostPackets = 0;
  private roundDeliveredBytes = 0;
  /** The most in flight when any packet lost in this round was sent (BBRv2 tx_in_flight). */
  private roundLostTxInFlight = 0;
  /** Rounds judged lossy (loss above BBR_LOSS_THRESH), for tests and stats. */
  lossyRounds = 0;

  // --- ACK aggregation
  private readonly extraAcked = [0, 0];
  private extraAckedIndex = 0;
  private extraAckedRounds = 0;
  private ackEpochStamp = 0;
  private ackEpochAcked = 0;

  constructor(config: BbrConfig, now: number) {
    this.mss = config.mss;
    this.initialCwnd = config.initialCwnd;
    this.random = config.random;
    this.cwnd = config.initialCwnd;
    // tcp_bbr.c bbr_init_pacing_rate_from_rtt: no RTT yet, so assume 1 ms; the pacer's
    // burst and the window limit the first flight anyway.
    this.pacingRate = BBR_STARTUP_GAIN * config.initialCwnd;
    this.ackEpochStamp = now;
    // tcp_bbr.c bbr_init: the min-RTT window starts now, so the first sample does not
    // find it expired and send a fresh flow into probe-RTT.
    this.minRttStamp = now;
  }

  /** Bottleneck bandwidth estimate, bytes/ms (0 before a sample). */
  get bw(): number {
    return this.bwFilter.value;
  }

  private get minCwnd(): number {
    return MIN_CWND_PACKETS * this.mss;
  }

  /** gain × bandwidth × min RTT, bytes; the initial window before there is a model. */
  bdp(gain: number): number {
    if (!Number.isFinite(this.minRtt) || this.bw <= 0) return this.initialCwnd;
    return gain * this.bw * this.minRtt;
  }

  /**
   * A packet was declared lost (by an ACK or by the loss timer); `txInFlight` is what
   * was in flight, itself included, when it was sent.
   */
  onLoss(bytes: number, txInFlight: number): void {
    this.roundLostBytes += bytes;
    this.roundLostPackets++;
    if (txInFlight > this.roundLostTxInFlight) this.roundLostTxInFlight = txInFlight;
  }

  /**
   * RFC 9002 §7.6 persistent congestion: the path was dark for several PTOs, so the
   * model may be stale. Like tcp_bbr.c after an RTO, restart from the minimum window
   * and let the ACKs grow it back towards the model's target (one doubling a round).
   */
  onPersistentCongestion(): void {
    this.cwnd = this.minCwnd;
  }

  onAck(a: BbrAck): void {
    this.updateRound(a);
    this.updateBw(a);
    this.updateAckAggregation(a);
    this.checkLossRound(a);
    this.checkFullBw(a);
    this.checkDrain(a);
    this.updateCycle(a);
    this.updateMinRtt(a);
    this.setPacingRate(a);
    this.setCwnd(a);
  }

  private updateRound(a: BbrAck): void {
    this.roundDeliveredBytes += a.ackedBytes;
    this.roundStart = false;
    if (a.ackedBytes > 0 && a.priorDelivered >= this.nextRoundDelivered) {
      this.nextRoundDelivered = a.delivered;
      this.roundCount++;
      this.roundStart = true;
    }
  }

  private updateBw(a: BbrAck): void {
    if (a.rate === undefined || !(a.rate > 0)) return;
    // tcp_bbr.c bbr_update_bw: an app-limited sample says only "at least this much".
    if (a.appLimited && a.rate < this.bw) return;
    this.bwFilter.update(a.rate, this.roundCount, BW_WINDOW_ROUNDS);
  }

  /**
   * tcp_bbr.c bbr_update_ack_aggregation: ACKs that arrive in bunches (delayed ACKs,
   * Wi-Fi aggregation, a busy event loop) deliver more than bw × elapsed at once; the
   * window keeps room for the largest such excess seen lately so that bunching does not
   * leave the pipe empty between bunches.
   */
  private updateAckAggregation(a: BbrAck): void {
    if (a.ackedBytes <= 0 || this.bw <= 0) return;
    if (this.roundStart) {
      this.extraAckedRounds++;
      if (this.extraAckedRounds >= EXTRA_ACKED_WINDOW_ROUNDS) {
        this.extraAckedIndex ^= 1;
        this.extraAcked[this.extraAckedIndex] = 0;
        this.extraAckedRounds = 0;
      }
    }
    let expected = this.bw * (a.now - this.ackEpochStamp);
    if (this.ackEpochAcked <= expected) {
      this.ackEpochAcked = 0;
      this.ackEpochStamp = a.now;
      expected = 0;
    }
    this.ackEpochAcked += a.ackedBytes;
    const extra = Math.min(this.ackEpochAcked - expected, this.cwnd);
    if (extra > this.extraAcked[this.extraAckedIndex]!)
      this.extraAcked[this.extraAckedIndex] = extra;
  }

  private aggregationAllowance(): number {
    if (!this.fullBwReached) return 0;
    const extra = Math.max(this.extraAcked[0]!, this.extraAcked[1]!);
    return Math.min(extra, this.bw * EXTRA_ACKED_MAX_MS);
  }

  /**
   * BBRv2's loss response, judged once per round: a round that lost more than
   * BBR_LOSS_THRESH of what it carried (and at least LOSS_MIN_PACKETS) bounds inflight
   * at what was in flight when the lost packets went out, or 0.7 BDP if that was less
   * (tcp_bbr.c v2 bbr_handle_inflight_too_high). Below the threshold, losses are taken
   * for random and ignored: no bound, no smaller window.
   */
  private checkLossRound(a: BbrAck): void {
    if (!this.roundStart) return;
    const lost = this.roundLostBytes;
    const carried = lost + this.roundDeliveredBytes;
    const lossy =
      this.roundLostPackets >= LOSS_MIN_PACKETS && carried > 0 && lost / carried > BBR_LOSS_THRESH;
    const txInFlight = this.roundLostTxInFlight;
    this.roundLostTxInFlight = 0;
    this.roundLostBytes = 0;
    this.roundLostPackets = 0;
    this.roundDeliveredBytes = 0;
    if (lossy) this.lossyRounds++;
    if (lossy && this.lossFromProbing()) {
      const target = Math.min(this.bdp(1), this.cwnd);
      this.inflightHi = Math.max(txInFlight, LOSS_BETA * target, this.minCwnd);
      this.probeUpRounds = 0;
      this.probeUpAcked = 0;
      // BBRv2: high loss in startup means the pipe is full (bbr_check_loss_too_high_in_startup).
      if (this.state === 'startup') {
        this.fullBwReached = true;
        this.enterDrain();
      } else if (this.state === 'probe-bw' && this.pacingGain > 1) {
        // Stop probing up: this much was too much.
        this.advanceCycle(a.now);
      }
    } else if (
      this.state === 'probe-bw' &&
      this.pacingGain > 1 &&
      Number.isFinite(this.inflightHi)
    ) {
      // BBRv2 bbr_probe_inflight_hi_upward: a clean probing round may raise the bound,
      // by 1, 2, 4 … packets per round while the window presses against it.
      this.probeUpRounds = Math.min(this.probeUpRounds + 1, 30);
    }
  }

  /**
   * BBRv2 learns inflightHi only from losses of packets sent while it probed for
   * bandwidth (tcp_bbr.c v2 bw_probe_samples): startup and its drain, and probe-bw's
   * up phase and the down phase after it, in which the up phase's losses are detected.
   * Losses while cruising at the measured rate are not of our making — another flow's
   * queue or the radio — and bounding on them would hand the link to loss-based flows.
   */
  private lossFromProbing(): boolean {
    if (this.state === 'startup' || this.state === 'drain') return true;
    return this.state === 'probe-bw' && this.cycleIndex <= 1;
  }

  private raiseInflightHi(a: BbrAck): void {
    if (!Number.isFinite(this.inflightHi)) return;
    if (this.state !== 'probe-bw' || this.pacingGain <= 1) return;
    if (a.priorInFlight + this.mss < this.inflightHi) return;
    this.probeUpAcked += a.ackedBytes;
    const growth = Math.pow(2, this.probeUpRounds);
    const per = Math.max(this.cwnd / growth, this.mss);
    while (this.probeUpAcked >= per) {
      this.probeUpAcked -= per;
      this.inflightHi += this.mss;
    }
  }

  private checkFullBw(a: BbrAck): void {
    // tcp_bbr.c bbr_check_full_bw_reached; probe-RTT's rounds are starved on purpose.
    if (this.fullBwReached || !this.roundStart || a.appLimited || this.state === 'probe-rtt')
      return;
    if (this.bw >= this.fullBw * FULL_BW_GROWTH) {
      this.fullBw = this.bw;
      this.fullBwCount = 0;
      return;
    }
    this.fullBwCount++;
    if (this.fullBwCount >= FULL_BW_ROUNDS) {
      this.fullBwReached = true;
      if (this.state === 'startup') this.enterDrain();
    }
  }

  private enterDrain(): void {
    this.state = 'drain';
    this.pacingGain = 1 / BBR_STARTUP_GAIN;
    this.cwndGain = CWND_GAIN;
  }

  private checkDrain(a: BbrAck): void {
    if (this.state === 'drain' && a.inFlight <= this.bdp(1)) this.enterProbeBw(a.now);
  }

  private enterProbeBw(now: number): void {
    this.state = 'probe-bw';
    this.cwndGain = CWND_GAIN;
    // tcp_bbr.c bbr_reset_probe_bw_mode: start anywhere but the drain-down phase, so
    // that flows sharing a bottleneck do not probe in lock step.
    const n = BBR_PROBE_BW_GAINS.length;
    this.cycleIndex = n - 1 - Math.floor(this.random() * (n - 1));
    this.advanceCycle(now);
  }

  private advanceCycle(now: number): void {
    this.cycleIndex = (this.cycleIndex + 1) % BBR_PROBE_BW_GAINS.length;
    this.cycleStamp = now;
    this.pacingGain = BBR_PROBE_BW_GAINS[this.cycleIndex]!;
    this.probeUpRounds = 0;
    this.probeUpAcked = 0;
  }

  /** tcp_bbr.c bbr_is_next_cycle_phase, with BBRv2's threshold in place of "any loss". */
  private updateCycle(a: BbrAck): void {
    if (this.state !== 'probe-bw') return;
    this.raiseInflightHi(a);
    const fullLength = a.now - this.cycleStamp > this.minRtt;
    const gain = this.pacingGain;
    let next: boolean;
    if (gain === 1) next = fullLength;
    else if (gain > 1) {
      // Probe until the pipe holds gain × BDP. While a loss bound holds the window
      // below that, the phase goes on and the bound rises (raiseInflightHi) until it
      // gets there or a lossy round ends the probe (checkLossRound).
      next = fullLength && a.priorInFlight >= this.bdp(gain);
    } else next = fullLength || a.priorInFlight <= this.bdp(1);
    if (next) this.advanceCycle(a.now);
  }

  /** tcp_bbr.c bbr_update_min_rtt and probe-RTT. */
  private updateMinRtt(a: BbrAck): void {
    const expired = a.now > this.minRttStamp + BBR_MIN_RTT_WINDOW_MS;
    if (a.rtt !== undefined && a.rtt > 0 && (a.rtt <= this.minRtt || expired)) {
      this.minRtt = a.rtt;
      this.minRttStamp = a.now;
    }
    if (expired && this.state !== 'probe-rtt' && Number.isFinite(this.minRtt)) {
      this.state = 'probe-rtt';
      this.pacingGain = 1;
      this.cwndGain = 1;
      this.priorCwnd = Math.max(this.priorCwnd, this.cwnd);
      this.probeRttDoneStamp = undefined;
    }
    if (this.state !== 'probe-rtt') return;
    if (this.probeRttDoneStamp === undefined) {
      if (a.inFlight <= this.minCwnd) {
        this.probeRttDoneStamp = a.now + BBR_PROBE_RTT_MS;
        this.probeRttRoundDone = false;
        this.nextRoundDelivered = a.delivered;
      }
      return;
    }
    if (this.roundStart) this.probeRttRoundDone = true;
    if (this.probeRttRoundDone && a.now >= this.probeRttDoneStamp) {
      this.minRttStamp = a.now;
      this.cwnd = Math.max(this.cwnd, this.priorCwnd);
      this.priorCwnd = 0;
      if (this.fullBwReached) this.enterProbeBw(a.now);
      else {
        this.state = 'startup';
        this.pacingGain = BBR_STARTUP_GAIN;
        this.cwndGain = CWND_GAIN;
      }
    }
  }

  private setPacingRate(a: BbrAck): void {
    if (!this.seenRtt && a.rtt !== undefined && a.rtt > 0) {
      // tcp_bbr.c bbr_init_pacing_rate_from_rtt: the guess of 1 ms gives way to the
      // first real RTT, so startup paces at gain × initial window per RTT.
      this.seenRtt = true;
      this.pacingRate = (this.pacingGain * this.cwnd) / a.rtt;
    }
    const bw = this.bw;
    if (bw <= 0) {
      if (Number.isFinite(this.minRtt)) {
        this.pacingRate = Math.max(
          this.pacingRate,
          (this.pacingGain * this.cwnd) / Math.max(this.minRtt, 1),
        );
      }
      return;
    }
    const rate = this.pacingGain * bw * PACING_MARGIN;
    // tcp_bbr.c bbr_set_pacing_rate: in startup the rate only grows.
    if (this.fullBwReached || rate > this.pacingRate) this.pacingRate = rate;
  }

  /** The window bound from loss, with headroom outside the probe-up phase. */
  private inflightBound(): number {
    if (!Number.isFinite(this.inflightHi)) return Infinity;
    if (this.state === 'probe-bw' && this.pacingGain > 1) return this.inflightHi;
    const floor = Math.min(this.inflightHi, this.bdp(1));
    return Math.max((1 - HEADROOM) * this.inflightHi, floor, this.minCwnd);
  }

  /** tcp_bbr.c bbr_set_cwnd. */
  private setCwnd(a: BbrAck): void {
    const target =
      this.bdp(this.cwndGain) + this.aggregationAllowance() + QUANTIZATION_PACKETS * this.mss;
    let cwnd = this.cwnd;
    if (this.fullBwReached) cwnd = Math.min(cwnd + a.ackedBytes, target);
    else if (cwnd < target || a.delivered < this.initialCwnd) cwnd += a.ackedBytes;
    cwnd = Math.max(cwnd, this.minCwnd);
    cwnd = Math.min(cwnd, Math.max(this.inflightBound(), this.minCwnd));
    if (this.state === 'probe-rtt') cwnd = Math.min(cwnd, this.minCwnd);
    this.cwnd = cwnd;
  }
}
