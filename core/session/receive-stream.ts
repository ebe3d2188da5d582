import { BraidError } from '../util/errors.js';
import { RangeSet } from './range-set.js';

interface Segment {
  offset: number;
  data: Uint8Array;
}

/**
 * The receiving half of a reliable-ordered session: the reorder buffer of paper
 * §III-B. Frames arrive from every path in any order and possibly more than once (a
 * reinjected copy and the original); each byte is kept once and handed to the
 * application once, in order. The buffer is bounded by the receive window the
 * receiver advertises (MAX_DATA): a peer that sends beyond it is in error.
 */
export class ReceiveStream {
  /** Next offset to hand to the application. */
  deliveredOffset = 0;
  /** The peer may send bytes below this offset. */
  maxOffset: number;
  /** The offset last advertised in a MAX_DATA frame. */
  advertisedOffset: number;
  finOffset: number | undefined;
  /** Bytes that arrived more than once (both copies of a reinjection, retransmits). */
  duplicateBytes = 0;

  private readonly window: number;
  private readonly received = new RangeSet();
  /** Out-of-order segments sorted by offset; never overlapping. */
  private segments: Segment[] = [];
  private bufferedBytes_ = 0;
  /** Most bytes ever held (reorder buffer plus unread), for the bound check in the bench. */
  peakBufferedBytes = 0;

  /**
   * `initialCredit` (default the whole window) is what the first MAX_DATA grants; the
   * association gives less when its buffer (config.associationBuffer) is mostly promised.
   */
  constructor(window: number, initialCredit = window) {
    this.window = window;
    this.maxOffset = Math.min(window, initialCredit);
    this.advertisedOffset = this.maxOffset;
  }

  /** Bytes received and not yet handed to the application. */
  get bufferedBytes(): number {
    return this.bufferedBytes_;
  }

  /** Some STREAM frame (data or FIN) arrived. */
  get hasReceived(): boolean {
    return !this.received.isEmpty || this.finOffset !== undefined;
  }

  /** Every byte up to the end of stream was handed to the application. */
  get finished(): boolean {
    return this.finOffset !== undefined && this.deliveredOffset === this.finOffset;
  }

  /** Accepts one STREAM frame's data. Returns a protocol error instead of throwing. */
  receive(offset: number, data: Uint8Array, fin: boolean): BraidError | undefined {
    const end = offset + data.length;
    if (end > this.maxOffset) {
      return new BraidError('BRAID_ERR_FLOW_CONTROL', 'peer sent beyond the receive window', {
        value: end,
      });
    }
    if (fin) {
      if (this.finOffset !== undefined && this.finOffset !== end) {
        return new BraidError('BRAID_ERR_SESSION_STATE', 'end of stream moved', { value: end });
      }
      if (Math.max(this.received.end, this.deliveredOffset) > end) {
        return new BraidError('BRAID_ERR_SESSION_STATE', 'end of stream before received data', {
          value: end,
        });
      }
      this.finOffset = end;
    } else if (this.finOffset !== undefined && end > this.finOffset) {
      return new BraidError('BRAID_ERR_SESSION_STATE', 'data beyond the end of stream', {
        value: end,
      });
    }
    if (data.length === 0) return undefined;
    const start = Math.max(offset, this.deliveredOffset);
    if (start >= end || this.received.covers(start, end)) {
      this.duplicateBytes += data.length;
      return undefined;
    }
    let fresh = 0;
    this.received.forEachGap(start, end, (s, e) => {
      this.insert({ offset: s, data: data.subarray(s - offset, e - offset) });
      fresh += e - s;
    });
    this.duplicateBytes += data.length - fresh;
    this.bufferedBytes_ += fresh;
    if (this.bufferedBytes_ > this.peakBufferedBytes) this.peakBufferedBytes = this.bufferedBytes_;
    this.received.add(start, end);
    return undefined;
  }

  private insert(seg: Segment): void {
    const segs = this.segments;
    const n = segs.length;
    if (n === 0 || segs[n - 1]!.offset < seg.offset) {
      segs.push(seg);
      return;
    }
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (segs[mid]!.offset < seg.offset) lo = mid + 1;
      else hi = mid;
    }
    segs.splice(lo, 0, seg);
  }

  /** Next in-order piece for the application, or undefined when there is a hole. */
  read(): Uint8Array | undefined {
    const seg = this.segments[0];
    if (seg === undefined || seg.offset !== this.deliveredOffset) return undefined;
    this.segments.shift();
    this.deliveredOffset += seg.data.length;
    this.bufferedBytes_ -= seg.data.length;
    this.received.trimBelow(this.deliveredOffset);
    return seg.data;
  }

  /**
   * Moves the window forward as the application consumes data. Returns the new
   * offset to advertise when at least half a window was consumed since the last
   * advertisement (RFC 9000 §4.2 leaves the policy open; half a window keeps
   * MAX_DATA frames rare and the sender never starved), else undefined. `credit` caps
   * the bytes granted beyond what was delivered (the association's share for this
   * session); the window never shrinks below what was already advertised.
   */
  windowUpdate(credit = this.window): number | undefined {
    const allowed = Math.min(this.window, credit);
    const target = this.deliveredOffset + allowed;
    if (target - this.advertisedOffset < allowed / 2) return undefined;
    this.maxOffset = target;
    this.advertisedOffset = target;
    return target;
  }
}
