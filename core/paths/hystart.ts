/**
 * HyStart++ (RFC 9406): leaves slow start when the RTT starts to rise, before the
 * doubling window overflows the bottleneck's queue, where otherwise slow start ends
 * only with a burst of queue drops, CUBIC's cut and, on coupled paths, LIA's slow climb
 * back. Linux TCP runs HyStart by default, so the TCP and MPTCP flows we are measured
 * against have it. Its delay signal needs a queue that stands for a whole round: on a
 * deep buffer (cable modems, LTE) that comes well before the drops; in the lab's
 * queues of one BDP it comes about when they do, and the receiver's batched ACKs
 * (one per event-loop turn, 5–25 packets in slow start) seldom give a round its 8
 * RTT samples, so there it rarely fires (`exits` counts; the lab's paths log shows it).
 *
 * Pure state machine, fed per ACK by PathRecovery while the window is below ssthresh:
 * rounds are delimited by packet numbers (a round ends when a packet sent after the
 * round began is acknowledged), the RTT is the per-ACK sample. Pacing is on, so the
 * RFC's per-ACK cap L is infinite (§4.3).
 */

/** RFC 9406 §4.3 constants. */
export const MIN_RTT_THRESH_MS = 4;
export const MAX_RTT_THRESH_MS = 16;
export const MIN_RTT_DIVISOR = 8;
export const N_RTT_SAMPLE = 8;
export const CSS_GROWTH_DIVISOR = 4;
export const CSS_ROUNDS = 5;

export type HyStartPhase = 'slow-start' | 'css';

export class HyStart {
  private phase: HyStartPhase = 'slow-start';
  /** The round ends once a packet numbered at least this is acknowledged. */
  private windowEnd = -1;
  private lastRoundMinRtt = Infinity;
  private currentRoundMinRtt = Infinity;
  private samples = 0;
  private cssBaselineMinRtt = Infinity;
  private cssRounds = 0;
  /** Slow starts HyStart++ ended on a rising RTT, before a loss did. */
  exits = 0;

  get inCss(): boolean {
    return this.phase === 'css';
  }

  /** Bytes by which `ackedBytes` grow the window: all of them in slow start, a quarter in CSS. */
  growth(ackedBytes: number): number {
    return this.phase === 'css' ? ackedBytes / CSS_GROWTH_DIVISOR : ackedBytes;
  }

  /**
   * One ACK in slow start. `largestAcked`: the largest packet number it newly
   * acknowledged; `nextPn`: the next packet number the path will send; `rtt`: its
   * RTT sample (ms) when it gave one. Returns true when slow start should end now
   * (CSS lasted CSS_ROUNDS rounds): the caller sets ssthresh to the window.
   */
  onAck(largestAcked: number, nextPn: number, rtt: number | undefined): boolean {
    if (largestAcked >= this.windowEnd) {
      // A new round (§4.2: "at the start of each round").
      this.windowEnd = nextPn;
      this.lastRoundMinRtt = this.currentRoundMinRtt;
      this.currentRoundMinRtt = Infinity;
      this.samples = 0;
      if (this.phase === 'css' && ++this.cssRounds >= CSS_ROUNDS) {
        this.exits++;
        this.reset();
        return true;
      }
    }
    if (rtt === undefined) return false;
    this.currentRoundMinRtt = Math.min(this.currentRoundMinRtt, rtt);
    this.samples++;
    if (this.samples < N_RTT_SAMPLE) return false;
    if (this.phase === 'slow-start') {
      if (!Number.isFinite(this.lastRoundMinRtt)) return false;
      const thresh = Math.min(
        MAX_RTT_THRESH_MS,
        Math.max(MIN_RTT_THRESH_MS, this.lastRoundMinRtt / MIN_RTT_DIVISOR),
      );
      if (this.currentRoundMinRtt >= this.lastRoundMinRtt + thresh) {
        this.cssBaselineMinRtt = this.currentRoundMinRtt;
        this.phase = 'css';
        this.cssRounds = 0;
      }
    } else if (this.currentRoundMinRtt < this.cssBaselineMinRtt) {
      // §4.2: the RTT rise was spurious; back to slow start.
      this.cssBaselineMinRtt = Infinity;
      this.phase = 'slow-start';
    }
    return false;
  }

  /** Slow start begins afresh (a new path, or after persistent congestion). */
  reset(): void {
    this.phase = 'slow-start';
    this.windowEnd = -1;
    this.lastRoundMinRtt = Infinity;
    this.currentRoundMinRtt = Infinity;
    this.samples = 0;
    this.cssBaselineMinRtt = Infinity;
    this.cssRounds = 0;
  }
}
