/**
 * The clear header at the start of every packet on a path (UDP datagram or TCP record),
 * authenticated as the AEAD's associated data (DESIGN §3):
 *
 *   byte 0      version (WIRE_VERSION)
 *   bytes 1..8  association id (ASSOCIATION_ID_LENGTH raw bytes)
 *   varint      pathId
 *   varint      packetNumber (per-path space; also the AEAD nonce)
 *
 * Varints are in their shortest form, as in frames.
 */
import { BraidError } from '../util/errors.js';
import { ASSOCIATION_ID_LENGTH, WIRE_VERSION } from './frame.js';
import { type DecodeResult, WireReader, toFailure } from './decode.js';
import { isVarintValue, varintLength, writeVarintUnchecked } from './varint.js';

export interface PacketHeader {
  version: number;
  /** View of the packet's bytes, not a copy. */
  associationId: Uint8Array;
  pathId: number;
  packetNumber: number;
}

/** Encoded size of a header with these numbers. */
export function headerLength(pathId: number, packetNumber: number): number {
  return 1 + ASSOCIATION_ID_LENGTH + varintLength(pathId) + varintLength(packetNumber);
}

/**
 * Writes a header at `pos` and returns the position after it. Throws
 * BRAID_ERR_WIRE_BAD_VALUE for a bad id or number and BRAID_ERR_WIRE_TOO_LARGE when
 * the header does not fit.
 */
export function writeHeader(
  buf: Buffer,
  pos: number,
  associationId: Uint8Array,
  pathId: number,
  packetNumber: number,
): number {
  if (associationId.length !== ASSOCIATION_ID_LENGTH) {
    throw new BraidError(
      'BRAID_ERR_WIRE_BAD_VALUE',
      `association id must be ${ASSOCIATION_ID_LENGTH} bytes`,
      { value: associationId },
    );
  }
  if (!isVarintValue(pathId) || !isVarintValue(packetNumber)) {
    throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', 'packet header number out of range', {
      value: `pathId ${pathId} packetNumber ${packetNumber}`,
    });
  }
  const length = headerLength(pathId, packetNumber);
  if (!Number.isSafeInteger(pos) || pos < 0 || pos + length > buf.length) {
    throw new BraidError('BRAID_ERR_WIRE_TOO_LARGE', 'packet header does not fit the buffer', {
      value: pos,
    });
  }
  buf[pos] = WIRE_VERSION;
  buf.set(associationId, pos + 1);
  pos = writeVarintUnchecked(buf, pos + 1 + ASSOCIATION_ID_LENGTH, pathId);
  return writeVarintUnchecked(buf, pos, packetNumber);
}

/**
 * Reads the header at the start of `buf`; `length` is its size, where the protected
 * payload starts. A version other than WIRE_VERSION is BRAID_ERR_WIRE_VERSION.
 */
export function decodeHeader(
  buf: Uint8Array,
): DecodeResult<{ header: PacketHeader; length: number }> {
  const r = new WireReader(buf, 0, buf.length);
  r.context = 'packet header';
  try {
    const version = r.u8('version');
    if (version !== WIRE_VERSION) {
      throw new BraidError('BRAID_ERR_WIRE_VERSION', `unsupported wire version ${version}`, {
        value: version,
      });
    }
    const associationId = r.raw('associationId', ASSOCIATION_ID_LENGTH);
    const pathId = r.varint('pathId');
    const packetNumber = r.varint('packetNumber');
    return {
      ok: true,
      value: { header: { version, associationId, pathId, packetNumber }, length: r.pos },
    };
  } catch (err) {
    return toFailure(err);
  }
}
