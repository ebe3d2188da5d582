import { BraidError } from '../util/errors.js';
import { RangeSet } from './range-set.js';

/** A piece of the stream chosen for the next STREAM frame. */
export interface StreamRange {
  offset: number;
  length: number;
  fin: boolean;
}

/**
 * The sending half of a reliable-ordered session: bytes the application wrote, kept
 * until the peer's session layer acknowledges them (paper §III-B: session sequence
 * numbers are byte offsets). A range reported lost on one path is queued for
 * retransmission and the scheduler re-sends it on whichever path it picks
 * (reinjection, DESIGN §3). Retransmissions go before new data.
 */
export class SendStream {
  /** Most bytes ever written and not yet acknowledged (the send queue's peak). */
  peakBufferedBytes = 0;
  /** Written chunks not yet fully acknowledged, with the stream offset each starts at. */
  private chunks: Buffer[] = [];
  private starts: number[] = [];
  private head = 0;
  private cursor = 0;

  /** Total bytes written by the application. */
  writeOffset = 0;
  /** First byte never sent. */
  nextOffset = 0;
  /** Every byte below this offset is acknowledged. */
  ackedPrefix = 0;
  /** Flow control: the peer accepts bytes below this offset (MAX_DATA). */
  peerMaxOffset: number;
  /** Stream offset at which the stream ends, once the application ended it. */
  finOffset: number | undefined;
  finSent = false;
  finAcked = false;
  private finLost = false;

  private readonly lost = new RangeSet();
  private readonly acked = new RangeSet();
  /** Bytes handed to the scheduler again after a loss, for statistics. */
  retransmittedBytes = 0;

  constructor(initialPeerMaxOffset: number) {
    this.peerMaxOffset = initialPeerMaxOffset;
  }

  write(chunk: Buffer): void {
    if (this.finOffset !== undefined) {
      throw new BraidError('BRAID_ERR_SESSION_STATE', 'write after end of stream', {
        value: chunk.length,
      });
    }
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.starts.push(this.writeOffset);
    this.writeOffset += chunk.length;
    const buffered = this.writeOffset - this.ackedPrefix;
    if (buffered > this.peakBufferedBytes) this.peakBufferedBytes = buffered;
  }

  end(): void {
    if (this.finOffset === undefined) this.finOffset = this.writeOffset;
  }

  /** Bytes written and not yet acknowledged (what the application is still waiting on). */
  get bufferedBytes(): number {
    return this.writeOffset - this.ackedPrefix;
  }

  /** Every byte and the end of stream are acknowledged. */
  get allAcked(): boolean {
    return this.finAcked && this.ackedPrefix === this.finOffset;
  }

  /** Whether nextRange() would return something now. */
  get hasPending(): boolean {
    if (!this.lost.isEmpty || this.finLost) return true;
    if (this.nextOffset < this.writeOffset && this.nextOffset < this.peerMaxOffset) return true;
    return this.finOffset !== undefined && !this.finSent && this.nextOffset === this.finOffset;
  }

  /** The next range is a repair: data reported lost (or reinjected) going out again. */
  get repairPending(): boolean {
    return !this.lost.isEmpty || this.finLost;
  }

  /** Blocked by the peer's window with data waiting (worth telling in stats). */
  get flowBlocked(): boolean {
    return (
      this.lost.isEmpty &&
      this.nextOffset < this.writeOffset &&
      this.nextOffset >= this.peerMaxOffset
    );
  }

  /**
   * Takes the next range to send, at most maxLength bytes: lost ranges first, then
   * new data within the peer's window, then a bare FIN. Marks it as sent.
   */
  nextRange(maxLength: number): StreamRange | undefined {
    if (maxLength <= 0) return undefined;
    const lostStart = this.lost.first;
    if (lostStart !== undefined) {
      const lostEnd = this.lost.firstEnd!;
      const end = Math.min(lostEnd, lostStart + maxLength);
      this.lost.remove(lostStart, end);
      this.retransmittedBytes += end - lostStart;
      const fin = this.finOffset === end && (this.finLost || !this.finSent);
      if (fin) {
        this.finLost = false;
        this.finSent = true;
      }
      return { offset: lostStart, length: end - lostStart, fin };
    }
    if (this.finLost) {
      this.finLost = false;
      return { offset: this.finOffset!, length: 0, fin: true };
    }
    const limit = Math.min(this.writeOffset, this.peerMaxOffset);
    if (this.nextOffset < limit) {
      const start = this.nextOffset;
      const end = Math.min(limit, start + maxLength);
      this.nextOffset = end;
      const fin = this.finOffset === end && !this.finSent;
      if (fin) this.finSent = true;
      return { offset: start, length: end - start, fin };
    }
    if (this.finOffset !== undefined && !this.finSent && this.nextOffset === this.finOffset) {
      this.finSent = true;
      return { offset: this.finOffset, length: 0, fin: true };
    }
    return undefined;
  }

  /** Copies stream bytes [offset, offset+length) into target at pos. */
  copy(offset: number, length: number, target: Buffer, pos: number): void {
    // A bare FIN (an empty stream's end) carries no bytes and may precede any write.
    if (length === 0) return;
    let i = this.findChunk(offset);
    let remaining = length;
    let at = offset;
    let out = pos;
    while (remaining > 0) {
      const chunk = this.chunks[i]!;
      const from = at - this.starts[i]!;
      const n = Math.min(remaining, chunk.length - from);
      chunk.copy(target, out, from, from + n);
      out += n;
      at += n;
      remaining -= n;
      i++;
    }
  }

  private findChunk(offset: number): number {
    // Sends mostly walk forward; try the cached index before a binary search.
    const c = this.cursor;
    if (c >= this.head && c < this.chunks.length) {
      const s = this.starts[c]!;
      if (offset >= s && offset < s + this.chunks[c]!.length) return c;
      const n = c + 1;
      if (
        n < this.chunks.length &&
        offset >= this.starts[n]! &&
        offset < this.starts[n]! + this.chunks[n]!.length
      ) {
        this.cursor = n;
        return n;
      }
    }
    let lo = this.head;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    if (offset < this.ackedPrefix || lo >= this.chunks.length) {
      throw new BraidError('BRAID_ERR_INTERNAL', 'stream bytes requested that are no longer kept', {
        value: offset,
      });
    }
    this.cursor = lo;
    return lo;
  }

  onAcked(offset: number, length: number, fin: boolean): void {
    if (fin) {
      this.finAcked = true;
      this.finLost = false;
    }
    if (length === 0) return;
    const end = offset + length;
    if (end <= this.ackedPrefix) return;
    this.acked.add(Math.max(offset, this.ackedPrefix), end);
    // A spurious loss: the range came through after all, do not send it again.
    this.lost.remove(offset, end);
    const first = this.acked.first;
    if (first !== undefined && first <= this.ackedPrefix) {
      this.ackedPrefix = this.acked.firstEnd!;
      this.acked.shift();
      this.release();
    }
  }

  onLost(offset: number, length: number, fin: boolean): void {
    if (fin && !this.finAcked) this.finLost = true;
    const end = offset + length;
    if (end <= this.ackedPrefix) return;
    // Only the parts not acknowledged meanwhile (e.g. by a copy sent on another path).
    this.acked.forEachGap(Math.max(offset, this.ackedPrefix), end, (s, e) => this.lost.add(s, e));
  }

  /** Frees chunks that lie wholly below the acknowledged prefix. */
  private release(): void {
    while (this.head < this.chunks.length) {
      const end = this.starts[this.head]! + this.chunks[this.head]!.length;
      if (end > this.ackedPrefix) break;
      this.head++;
    }
    // Compact now and then so the arrays do not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.starts = this.starts.slice(this.head);
      this.cursor = Math.max(0, this.cursor - this.head);
      this.head = 0;
    }
  }

  /**
   * Head-of-line repair (opportunistic reinjection, Raiciu et al., "How hard can it
   * be? Designing and implementing a deployable multipath TCP", NSDI 2012): the
   * acknowledged prefix is stuck while later bytes are acknowledged, so the first gap
   * is still in flight on a slow path (or lost there and not yet detected). Queues up
   * to `maxLength` bytes of that gap again so that a faster path can carry them; the
   * receiver drops whichever copy comes second. Returns the bytes queued: 0 when no
   * later byte is acknowledged (no evidence of a hole) or the gap is already queued.
   */
  reinjectHead(maxLength: number): number {
    const nextAcked = this.acked.first;
    if (nextAcked === undefined) return 0;
    const lostStart = this.lost.first;
    if (lostStart !== undefined && lostStart <= this.ackedPrefix) return 0;
    const end = Math.min(nextAcked, this.ackedPrefix + maxLength, this.nextOffset);
    if (end <= this.ackedPrefix) return 0;
    this.lost.add(this.ackedPrefix, end);
    return end - this.ackedPrefix;
  }

  /** Everything sent and not acknowledged goes back to the queue (the path set died). */
  requeueUnacked(): void {
    this.acked.forEachGap(this.ackedPrefix, this.nextOffset, (s, e) => this.lost.add(s, e));
    if (this.finSent && !this.finAcked) this.finLost = true;
  }
}
