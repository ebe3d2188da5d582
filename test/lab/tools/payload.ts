/**
 * Self-checking payloads for the lab, so that "delivered exactly once" is measured,
 * not assumed.
 *
 * Byte streams carry a position pattern: the 8-byte word at stream offset `o`
 * (o a multiple of 8) holds `o` as a 48-bit little-endian number followed by the
 * marker bytes A1 B7. A receiver knows what every byte must be from its position
 * alone; when a byte does not match, the next two intact words tell it which sender
 * offset it is really at, so a gap counts as lost bytes, a step back as duplicated
 * bytes, and anything that fits neither as corrupt bytes.
 *
 * Messages (the delay test) are fixed-size records: magic, sequence number, the
 * sender's CLOCK_MONOTONIC time (shared by every namespace of one host, so one-way
 * delay needs no clock sync) and a filler derived from the sequence number.
 */

const MARK0 = 0xa1;
const MARK1 = 0xb7;
/** The marker bytes as the top half of a word's second 32-bit little-endian store. */
const MARK_HIGH = (MARK0 << 16) + MARK1 * 0x100_0000;
/** Bytes needed after a mismatch to look for two consecutive intact words. */
const LOOKAHEAD = 24;

/** Writes the pattern bytes of sender offsets [offset, offset + buf.length) into buf. */
export function fillPattern(buf: Buffer, offset: number): Buffer {
  let i = 0;
  while (i < buf.length && (offset + i) % 8 !== 0) {
    buf[i] = patternByte(offset + i);
    i++;
  }
  // Two 32-bit stores per word: Buffer.writeUIntLE(v, i, 6) cost about 5 ms per MB,
  // which the sender's own event loop pays (braid-bulk serves from the Braid process).
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let low = (offset + i) % 0x1_0000_0000;
  let high = (Math.floor((offset + i) / 0x1_0000_0000) & 0xffff) + MARK_HIGH;
  for (; i + 8 <= buf.length; i += 8) {
    view.setUint32(i, low, true);
    view.setUint32(i + 4, high, true);
    low += 8;
    if (low >= 0x1_0000_0000) {
      low -= 0x1_0000_0000;
      high = ((high - MARK_HIGH + 1) & 0xffff) + MARK_HIGH;
    }
  }
  for (; i < buf.length; i++) buf[i] = patternByte(offset + i);
  return buf;
}

export function patternByte(offset: number): number {
  const k = offset % 8;
  if (k === 6) return MARK0;
  if (k === 7) return MARK1;
  const word = offset - k;
  return Math.floor(word / 2 ** (8 * k)) & 0xff;
}

export interface IntegrityCounts {
  /** Bytes that matched the pattern at their position. */
  checkedBytes: number;
  lostBytes: number;
  duplicatedBytes: number;
  corruptBytes: number;
}

/** Checks a received byte stream against the position pattern, incrementally. */
export class PatternVerifier {
  private received = 0;
  private matched = 0;
  private lost = 0;
  private duplicated = 0;
  private corrupt = 0;
  /** Sender offset = receiver position + shift (moves on loss or duplication). */
  private shift = 0;
  /** Bytes after a mismatch, kept until LOOKAHEAD bytes allow a resync. */
  private carry: Buffer | null = null;

  push(chunk: Buffer): void {
    this.scan(chunk, false);
  }

  /** Ends the stream; `expectedBytes` (bytes mode) counts a missing tail as lost. */
  finish(expectedBytes?: number): IntegrityCounts {
    this.scan(Buffer.alloc(0), true);
    if (expectedBytes !== undefined) {
      const senderEnd = this.received + this.shift;
      if (senderEnd < expectedBytes) this.lost += expectedBytes - senderEnd;
      if (senderEnd > expectedBytes) this.corrupt += senderEnd - expectedBytes;
    }
    return this.counts();
  }

  counts(): IntegrityCounts {
    return {
      checkedBytes: this.matched,
      lostBytes: this.lost,
      duplicatedBytes: this.duplicated,
      corruptBytes: this.corrupt,
    };
  }

  private scan(chunk: Buffer, final: boolean): void {
    const data = this.carry === null ? chunk : Buffer.concat([this.carry, chunk]);
    const base = this.received - (this.carry === null ? 0 : this.carry.length);
    this.carry = null;
    let i = 0;
    while (i < data.length) {
      const s = base + i + this.shift;
      if (
        s % 8 === 0 &&
        i + 8 <= data.length &&
        data[i + 6] === MARK0 &&
        data[i + 7] === MARK1 &&
        data.readUIntLE(i, 6) === s
      ) {
        this.matched += 8;
        i += 8;
        continue;
      }
      // Byte by byte otherwise: a loss may start in the middle of a word.
      if (data[i] === patternByte(s)) {
        this.matched++;
        i++;
        continue;
      }
      if (data.length - i < LOOKAHEAD && !final) break;
      const sender = findResync(data, i);
      if (sender !== null) {
        const shift = sender.offset - (base + i + sender.at);
        if (shift !== this.shift) {
          if (shift > this.shift) this.lost += shift - this.shift;
          else this.duplicated += this.shift - shift;
          this.shift = shift;
          continue;
        }
      }
      this.corrupt++;
      i++;
    }
    if (i < data.length) this.carry = Buffer.from(data.subarray(i));
    this.received = base + data.length;
  }
}

/** The first position at or after `from` (within 8 bytes) where two consecutive intact words start. */
function findResync(data: Buffer, from: number): { at: number; offset: number } | null {
  for (let a = 0; a < 8 && from + a + 16 <= data.length; a++) {
    const p = from + a;
    if (data[p + 6] !== MARK0 || data[p + 7] !== MARK1) continue;
    if (data[p + 14] !== MARK0 || data[p + 15] !== MARK1) continue;
    const v = data.readUIntLE(p, 6);
    if (v % 8 === 0 && data.readUIntLE(p + 8, 6) === v + 8) return { at: a, offset: v };
  }
  return null;
}

/** A pattern source: successive chunks of the position pattern. */
export class PatternSource {
  offset = 0;
  next(size: number): Buffer {
    const buf = fillPattern(Buffer.allocUnsafe(size), this.offset);
    this.offset += size;
    return buf;
  }
}

export const MESSAGE_MAGIC = 0x4252_4d53; // 'BRMS'
export const MESSAGE_HEADER = 16;

/** Milliseconds on CLOCK_MONOTONIC, comparable across processes of one host. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function encodeMessage(seq: number, size: number, sentMs: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  buf.writeUInt32BE(MESSAGE_MAGIC, 0);
  buf.writeUInt32BE(seq, 4);
  buf.writeDoubleBE(sentMs, 8);
  for (let k = MESSAGE_HEADER; k < size; k++) buf[k] = (seq * 31 + k) & 0xff;
  return buf;
}

export interface MessageStats {
  /** Messages the sender was asked to send. */
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  /** Records whose magic or filler did not check (stream misaligned or damaged). */
  corrupt: number;
  /** One-way delays in ms, in arrival order. */
  delaysMs: number[];
}

/** Splits a byte stream into fixed-size message records and checks each one. */
export class MessageReceiver {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private next = 0;
  readonly stats: MessageStats;

  constructor(
    private readonly size: number,
    expected: number,
    private readonly now: () => number = monotonicMs,
  ) {
    this.stats = { expected, received: 0, lost: 0, duplicated: 0, corrupt: 0, delaysMs: [] };
  }

  push(chunk: Buffer): void {
    const arrived = this.now();
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    if (this.bufferedBytes < this.size) return;
    let data = Buffer.concat(this.buffered);
    while (data.length >= this.size) {
      this.check(data.subarray(0, this.size), arrived);
      data = data.subarray(this.size);
    }
    this.buffered = data.length > 0 ? [Buffer.from(data)] : [];
    this.bufferedBytes = data.length;
  }

  /** Closes the count: messages never seen are lost. */
  finish(): MessageStats {
    if (this.bufferedBytes > 0) this.stats.corrupt++;
    if (this.next < this.stats.expected) this.stats.lost += this.stats.expected - this.next;
    return this.stats;
  }

  private check(record: Buffer, arrived: number): void {
    let ok = record.readUInt32BE(0) === MESSAGE_MAGIC;
    const seq = record.readUInt32BE(4);
    for (let k = MESSAGE_HEADER; ok && k < record.length; k++)
      ok = record[k] === ((seq * 31 + k) & 0xff);
    if (!ok) {
      this.stats.corrupt++;
      return;
    }
    this.stats.received++;
    this.stats.delaysMs.push(arrived - record.readDoubleBE(8));
    if (seq === this.next) this.next++;
    else if (seq > this.next) {
      this.stats.lost += seq - this.next;
      this.next = seq + 1;
    } else this.stats.duplicated++;
  }
}

/** Nearest-rank percentile of `values` (p in 0..100); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}
