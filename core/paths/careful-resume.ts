/**
 * Careful Resume (RFC 9959): a new path between two addresses that an earlier path
 * measured does not climb from the initial window by slow start's doubling. After one
 * round trip at the initial window (reconnaissance) confirms that the path still looks
 * like the one measured (its RTT within [½, 10) × the saved one, no loss), the window
 * jumps to half the saved capacity, paced over a round trip (unvalidated). The jump is
 * validated when the packets sent under it are acknowledged; a loss among them sends
 * the window back to half of what the path was shown to carry (safe retreat), below
 * where slow start's own loss would have left it.
 *
 * A 1 MB download is mostly slow start: on a 30 Mbit/s, 20 ms Wi-Fi link the initial
 * window (14.6 KB) needs three doublings to reach the link's 75 KB bandwidth-delay
 * product, two round trips of the ten or so the download takes. Linux keeps no such
 * state by default (tcp_metrics saves no cwnd), so Braid's paths here start ahead of a
 * kernel TCP flow only by what they measured on the same link before.
 *
 * Pure state machine, fed by PathRecovery for its loss-based controllers (CUBIC,
 * NewReno) on UDP paths: per packet sent, per packet acknowledged, per ACK and per
 * congestion event. The saved figures come from path-metrics-cache.ts.
 */

/** What an earlier path between the same two addresses measured (RFC 9959 §4.1). */
export interface ResumeSaved {
  /** Bytes the path carried: its window at the capacity it measured (saved_cwnd). */
  cwnd: number;
  /** Its min RTT, ms (saved_rtt). */
  rttMs: number;
}

/** RFC 9959 §4.3: the RTT check of reconnaissance; outside these bounds the path changed. */
export const RESUME_RTT_LOW = 0.5;
export const RESUME_RTT_HIGH = 10;

/** Whether saved figures can seed a resume: both finite and positive. */
export function usableResume(saved: ResumeSaved | undefined): saved is ResumeSaved {
  return (
    saved !== undefined &&
    saved.cwnd > 0 &&
    Number.isFinite(saved.cwnd) &&
    saved.rttMs > 0 &&
    Number.isFinite(saved.rttMs)
  );
}

export type ResumePhase = 'reconnaissance' | 'unvalidated' | 'validating' | 'retreat' | 'normal';

export class CarefulResume {
  private phase_: ResumePhase;
  private readonly saved: ResumeSaved | undefined;
  /** Bytes acknowledged in reconnaissance. */
  private reconAcked = 0;
  /** Bytes acknowledged since the jump (PipeSize, RFC 9959 §4.4). */
  private pipeSize = 0;
  /** The first and the last packet number sent in the unvalidated phase (-1: none yet). */
  private firstUnvalidatedPn = -1;
  private lastUnvalidatedPn = -1;
  /** The largest packet number acknowledged so far. */
  private largestAcked = -1;
  /** Jumps taken (0 or 1) and safe retreats (0 or 1), for the path summary. */
  jumps = 0;
  retreats = 0;
  /** Why resume ended without a jump, when it did (for logs and tests). */
  declined: 'rtt' | 'small' | 'loss' | undefined = undefined;

  constructor(saved: ResumeSaved | undefined) {
    const usable = usableResume(saved);
    this.saved = usable ? saved : undefined;
    this.phase_ = usable ? 'reconnaissance' : 'normal';
  }

  /** The saved window (saved_cwnd), when resume was seeded with usable figures. */
  get savedCwnd(): number | undefined {
    return this.saved?.cwnd;
  }

  get phase(): ResumePhase {
    return this.phase_;
  }

  /**
   * The jump is unvalidated (§4.4): the window does not grow by ACKs, and the jump goes
   * out paced over a round trip, not at slow start's twice that.
   */
  get unvalidated(): boolean {
    return this.phase_ === 'unvalidated';
  }

  /** Resume ends for good (the controller changed, the path went dark). */
  abandon(): void {
    this.phase_ = 'normal';
  }

  onSent(pn: number): void {
    if (this.phase_ !== 'unvalidated') return;
    if (this.firstUnvalidatedPn < 0) this.firstUnvalidatedPn = pn;
    this.lastUnvalidatedPn = pn;
  }

  /** One acknowledged packet (counted; the phase moves per ACK, onAckProcessed). */
  onPacketAcked(pn: number, bytes: number): void {
    if (this.phase_ === 'normal') return;
    if (this.phase_ === 'reconnaissance') this.reconAcked += bytes;
    else this.pipeSize += bytes;
    if (pn > this.largestAcked) this.largestAcked = pn;
  }

  /**
   * After an ACK's packets were counted. Returns the window the phase change sets, if
   * it sets one: once the first packet sent under the jump is acknowledged the jump is
   * validating, at the window in flight (an application that did not fill the jump
   * does not keep it), or, when what was delivered since the jump already covers the
   * flight, resume ends at that (§4.4). Validating ends when the jump's last packet is
   * acknowledged (§4.5).
   */
  onAckProcessed(flightSize: number): number | undefined {
    switch (this.phase_) {
      case 'unvalidated':
        if (this.firstUnvalidatedPn < 0 || this.largestAcked < this.firstUnvalidatedPn)
          return undefined;
        if (this.pipeSize < flightSize) {
          this.phase_ = 'validating';
          if (this.largestAcked >= this.lastUnvalidatedPn) this.phase_ = 'normal';
          return flightSize;
        }
        this.phase_ = 'normal';
        return this.pipeSize;
      case 'validating':
      case 'retreat':
        if (this.largestAcked >= this.lastUnvalidatedPn) this.phase_ = 'normal';
        return undefined;
      default:
        return undefined;
    }
  }

  /**
   * After an ACK's packets were counted: in reconnaissance, once the initial window is
   * acknowledged, the jump (§4.3). `rttMs` is the newest RTT sample; `cwnd` the window
   * now, `initialWindow` the path's first. Returns the window to jump to, if it jumps.
   */
  maybeJump(rttMs: number, cwnd: number, initialWindow: number): number | undefined {
    if (this.phase_ !== 'reconnaissance' || this.saved === undefined) return undefined;
    if (this.reconAcked < initialWindow) return undefined;
    const jump = this.saved.cwnd / 2;
    if (jump <= cwnd) {
      this.phase_ = 'normal';
      this.declined = 'small';
      return undefined;
    }
    if (
      !(rttMs > RESUME_RTT_LOW * this.saved.rttMs) ||
      !(rttMs < RESUME_RTT_HIGH * this.saved.rttMs)
    ) {
      this.phase_ = 'normal';
      this.declined = 'rtt';
      return undefined;
    }
    this.phase_ = 'unvalidated';
    this.pipeSize = cwnd;
    this.jumps++;
    return jump;
  }

  /**
   * A congestion event (a loss the controller responds to). In reconnaissance resume
   * ends (§4.3); with the jump unvalidated or validating, the safe retreat: the window
   * becomes half the bytes the path delivered since the jump (§4.6), returned, for the
   * controller to set in place of its own cut.
   */
  onCongestion(): number | undefined {
    switch (this.phase_) {
      case 'reconnaissance':
        this.phase_ = 'normal';
        this.declined = 'loss';
        return undefined;
      case 'unvalidated':
      case 'validating':
        this.phase_ = this.lastUnvalidatedPn < 0 ? 'normal' : 'retreat';
        this.retreats++;
        return this.pipeSize / 2;
      default:
        return undefined;
    }
  }
}
