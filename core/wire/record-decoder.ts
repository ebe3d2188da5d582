/**
 * Records on TCP paths and on the TLS control connection: a 4-byte big-endian length,
 * then that many bytes (DESIGN §3). `RecordDecoder` splits a byte stream arriving in
 * chunks of any size back into records, with a cap on the declared length so a peer
 * cannot make us buffer without bound.
 */
import { BraidError } from '../util/errors.js';

export const RECORD_HEADER_LENGTH = 4;
export const DEFAULT_MAX_RECORD = 256 * 1024;

const MAX_UINT32 = 0xffff_ffff;

/** Writes a record length prefix at `pos`; returns the position after it. */
export function writeRecordHeader(buf: Buffer, pos: number, length: number): number {
  if (!Number.isInteger(length) || length < 0 || length > MAX_UINT32) {
    throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', 'record length out of range', {
      value: length,
    });
  }
  if (!Number.isSafeInteger(pos) || pos < 0 || pos + RECORD_HEADER_LENGTH > buf.length) {
    throw new BraidError('BRAID_ERR_WIRE_TOO_LARGE', 'record header does not fit the buffer', {
      value: pos,
    });
  }
  buf.writeUInt32BE(length, pos);
  return pos + RECORD_HEADER_LENGTH;
}

// Consumed chunks are dropped from the front of the list in batches, so that records
// arriving in many tiny chunks cost O(n) rather than O(n²) array shifts.
const COMPACT_AFTER = 64;

const EMPTY = Buffer.alloc(0);

/**
 * Incremental record splitter: `push` chunks as they arrive, then call `next` until it
 * returns undefined. A record lying in one chunk is returned as a view of it; one that
 * spans chunks is copied once, when complete.
 */
export class RecordDecoder {
  private readonly chunks: Buffer[] = [];
  /** Index in `chunks` of the first chunk with unconsumed bytes. */
  private head = 0;
  /** Consumed bytes of `chunks[head]`. */
  private headOffset = 0;
  private buffered = 0;
  /** Body length of the record being assembled, once its header is complete; else -1. */
  private pending = -1;
  private poisoned: BraidError | undefined;

  constructor(readonly maxRecord: number = DEFAULT_MAX_RECORD) {
    if (!Number.isSafeInteger(maxRecord) || maxRecord < 0 || maxRecord > MAX_UINT32) {
      throw new BraidError('BRAID_ERR_USAGE', 'maxRecord out of range', { value: maxRecord });
    }
  }

  /** Bytes received and not yet returned as records (including a partial header). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0 || this.poisoned !== undefined) return;
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.chunks.push(buf);
    this.buffered += buf.length;
  }

  /**
   * The next whole record; undefined when more bytes are needed; BRAID_ERR_WIRE_TOO_LARGE
   * when a record declares more than `maxRecord` bytes, after which the stream cannot
   * be resynchronised and every call returns that error.
   */
  next(): Buffer | undefined | BraidError {
    if (this.poisoned !== undefined) return this.poisoned;
    if (this.pending < 0) {
      if (this.buffered < RECORD_HEADER_LENGTH) return undefined;
      const length = this.readHeader();
      if (length > this.maxRecord) {
        this.poisoned = new BraidError(
          'BRAID_ERR_WIRE_TOO_LARGE',
          `record of ${length} bytes is over the cap of ${this.maxRecord}`,
          { value: length },
        );
        this.chunks.length = 0;
        this.head = 0;
        this.headOffset = 0;
        this.buffered = 0;
        return this.poisoned;
      }
      this.pending = length;
    }
    if (this.buffered < this.pending) return undefined;
    const record = this.take(this.pending);
    this.pending = -1;
    return record;
  }

  private readHeader(): number {
    let length = 0;
    for (let i = 0; i < RECORD_HEADER_LENGTH; i++) length = length * 256 + this.takeByte();
    return length;
  }

  private takeByte(): number {
    const chunk = this.chunks[this.head]!;
    const byte = chunk[this.headOffset]!;
    this.headOffset++;
    this.buffered--;
    if (this.headOffset === chunk.length) this.dropHead();
    return byte;
  }

  /** Removes `length` buffered bytes (the caller checked they are there). */
  private take(length: number): Buffer {
    if (length === 0) return EMPTY;
    this.buffered -= length;
    const first = this.chunks[this.head]!;
    const start = this.headOffset;
    if (first.length - start >= length) {
      this.headOffset = start + length;
      if (this.headOffset === first.length) this.dropHead();
      return first.subarray(start, start + length);
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[this.head]!;
      const n = Math.min(chunk.length - this.headOffset, length - filled);
      chunk.copy(out, filled, this.headOffset, this.headOffset + n);
      filled += n;
      this.headOffset += n;
      if (this.headOffset === chunk.length) this.dropHead();
    }
    return out;
  }

  private dropHead(): void {
    this.head++;
    this.headOffset = 0;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
  }
}
