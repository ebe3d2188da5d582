/**
 * QUIC variable-length integers (RFC 9000 §16): the two high bits of the first byte
 * give the length (1, 2, 4 or 8 bytes), the rest is the value, big-endian. Braid limits
 * values to 0..2^53-1 so that they fit a JS number (core/wire/frame.ts).
 */
import { BraidError } from '../util/errors.js';

/** Largest value that fits each encoded length (RFC 9000 §16, Table 4). */
export const VARINT_MAX_1 = 63;
export const VARINT_MAX_2 = 16383;
export const VARINT_MAX_4 = 1073741823;
/** Largest value Braid encodes; 8-byte varints could carry 2^62-1 but a JS number cannot. */
export const VARINT_MAX = Number.MAX_SAFE_INTEGER;

const TWO_POW_32 = 0x1_0000_0000;

/** Whether `v` is an integer Braid can encode as a varint. */
export function isVarintValue(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}

/**
 * Encoded size of `v` in its shortest form. The value must be valid
 * (see `isVarintValue`); the encoder checks that before calling.
 */
export function varintLength(v: number): number {
  if (v <= VARINT_MAX_1) return 1;
  if (v <= VARINT_MAX_2) return 2;
  if (v <= VARINT_MAX_4) return 4;
  return 8;
}

/** Encoded size announced by a varint's first byte. */
export function varintLengthFromPrefix(firstByte: number): number {
  return 1 << (firstByte >> 6);
}

/**
 * Writes `v` in its shortest form at `pos` and returns the position after it.
 * Throws BRAID_ERR_WIRE_BAD_VALUE for a value outside 0..2^53-1 and
 * BRAID_ERR_WIRE_TOO_LARGE when it does not fit the buffer.
 */
export function writeVarint(buf: Buffer, pos: number, v: number): number {
  if (!isVarintValue(v)) {
    throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', 'varint out of range', { value: v });
  }
  const length = varintLength(v);
  if (pos < 0 || pos + length > buf.length) {
    throw new BraidError('BRAID_ERR_WIRE_TOO_LARGE', 'varint does not fit the buffer', {
      value: pos,
    });
  }
  return writeVarintUnchecked(buf, pos, v);
}

/**
 * `writeVarint` without range and bounds checks, for encoders that validated the frame
 * and its size first.
 */
export function writeVarintUnchecked(buf: Uint8Array, pos: number, v: number): number {
  if (v <= VARINT_MAX_1) {
    buf[pos] = v;
    return pos + 1;
  }
  if (v <= VARINT_MAX_2) {
    buf[pos] = 0x40 | (v >>> 8);
    buf[pos + 1] = v & 0xff;
    return pos + 2;
  }
  if (v <= VARINT_MAX_4) {
    buf[pos] = 0x80 | (v >>> 24);
    buf[pos + 1] = (v >>> 16) & 0xff;
    buf[pos + 2] = (v >>> 8) & 0xff;
    buf[pos + 3] = v & 0xff;
    return pos + 4;
  }
  const hi = Math.floor(v / TWO_POW_32);
  const lo = v >>> 0;
  buf[pos] = 0xc0 | (hi >>> 24);
  buf[pos + 1] = (hi >>> 16) & 0xff;
  buf[pos + 2] = (hi >>> 8) & 0xff;
  buf[pos + 3] = hi & 0xff;
  buf[pos + 4] = lo >>> 24;
  buf[pos + 5] = (lo >>> 16) & 0xff;
  buf[pos + 6] = (lo >>> 8) & 0xff;
  buf[pos + 7] = lo & 0xff;
  return pos + 8;
}

/**
 * Value of the varint of `length` bytes (from `varintLengthFromPrefix`) at `pos`; the
 * caller checked that the bytes are there. An 8-byte varint above 2^53-1 comes back as
 * a number greater than `VARINT_MAX` (possibly rounded), which decoders reject.
 */
export function readVarintValue(buf: Uint8Array, pos: number, length: number): number {
  const b0 = buf[pos]! & 0x3f;
  if (length === 1) return b0;
  if (length === 2) return (b0 << 8) | buf[pos + 1]!;
  const mid = (buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!;
  if (length === 4) return b0 * 0x100_0000 + mid;
  const hi = b0 * 0x100_0000 + mid;
  const lo =
    buf[pos + 4]! * 0x100_0000 + ((buf[pos + 5]! << 16) | (buf[pos + 6]! << 8) | buf[pos + 7]!);
  return hi * TWO_POW_32 + lo;
}

/**
 * Reads the varint at `pos`; undefined when the buffer ends inside it. The value is not
 * range-checked here: above 2^53-1 it is a BRAID_ERR_WIRE_BAD_VALUE for the decoder.
 */
export function readVarint(
  buf: Uint8Array,
  pos: number,
): { value: number; next: number } | undefined {
  if (pos < 0 || pos >= buf.length) return undefined;
  const length = varintLengthFromPrefix(buf[pos]!);
  if (pos + length > buf.length) return undefined;
  return { value: readVarintValue(buf, pos, length), next: pos + length };
}
