/**
 * Frame decoder for the encoding documented in core/wire/frame.ts. Any byte string
 * decodes to frames or to a typed error: every read is bounds-checked, every declared
 * length and list count is checked against the bytes left before anything is
 * allocated, and byte fields are zero-copy views of the input. There is one encoding
 * per frame (shortest varints, zero reserved bits, zero padding), so a decoded frame
 * re-encodes to the bytes it came from.
 */
import { BraidError, type ErrorCode } from '../util/errors.js';
import {
  ASSOCIATION_ID_LENGTH,
  FrameType,
  MAC_LENGTH,
  MAX_LIST_LENGTH,
  MAX_STRING_LENGTH,
  OBJECTIVES,
  PATH_STATES,
  SEMANTICS,
  SLIDER_SCALE,
  TRANSPORT_KINDS,
  type AckRange,
  type OpenPolicy,
  type FeedbackFrame,
  type Frame,
  type Objective,
  type TransportKind,
} from './frame.js';
import { VARINT_MAX, readVarintValue, varintLength, varintLengthFromPrefix } from './varint.js';

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: BraidError };

// fatal: malformed UTF-8 is an error, not U+FFFD; ignoreBOM: a leading U+FEFF is kept,
// so the string re-encodes to the same bytes.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Bounds-checked cursor over a byte string. Its methods throw BraidError with a
 * BRAID_ERR_WIRE_* code; the public decoders catch that once (`toFailure`) so the
 * per-field code stays free of result objects.
 */
export class WireReader {
  /** What is being decoded, for error messages ("stream frame", "packet header"). */
  context = '';

  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  fail(code: ErrorCode, field: string, why: string, value: unknown): never {
    throw new BraidError(code, `${this.context}: ${field} ${why} at byte ${this.pos}`, {
      value,
    });
  }

  u8(field: string): number {
    if (this.pos >= this.end) this.fail('BRAID_ERR_WIRE_TRUNCATED', field, 'truncated', 1);
    return this.buf[this.pos++]!;
  }

  /** A varint in its shortest form, 0..2^53-1. */
  varint(field: string): number {
    const pos = this.pos;
    if (pos >= this.end) this.fail('BRAID_ERR_WIRE_TRUNCATED', field, 'truncated', 1);
    const length = varintLengthFromPrefix(this.buf[pos]!);
    if (pos + length > this.end) {
      this.fail('BRAID_ERR_WIRE_TRUNCATED', field, 'truncated', length);
    }
    const value = readVarintValue(this.buf, pos, length);
    if (value > VARINT_MAX) this.fail('BRAID_ERR_WIRE_BAD_VALUE', field, 'above 2^53-1', value);
    // RFC 9000 §16 allows longer encodings; Braid does not, so each frame has one encoding.
    if (length !== 1 && varintLength(value) !== length) {
      this.fail('BRAID_ERR_WIRE_BAD_VALUE', field, 'is a non-minimal varint', value);
    }
    this.pos = pos + length;
    return value;
  }

  /** `length` raw bytes, as a view of the input. */
  raw(field: string, length: number): Uint8Array {
    if (length > this.end - this.pos) {
      this.fail('BRAID_ERR_WIRE_TRUNCATED', field, 'truncated', length);
    }
    const start = this.pos;
    this.pos = start + length;
    return this.buf.subarray(start, this.pos);
  }

  /** A varint length and that many bytes, as a view of the input. */
  bytes(field: string): Uint8Array {
    return this.raw(field, this.varint(field));
  }

  /** A varint length of at most MAX_STRING_LENGTH and that many bytes of UTF-8. */
  string(field: string): string {
    const length = this.varint(field);
    if (length > MAX_STRING_LENGTH) {
      this.fail('BRAID_ERR_WIRE_TOO_LARGE', field, `is over ${MAX_STRING_LENGTH} bytes`, length);
    }
    const view = this.raw(field, length);
    try {
      return utf8.decode(view);
    } catch (err) {
      throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', `${this.context}: ${field} is not UTF-8`, {
        value: view,
        cause: err,
      });
    }
  }

  /**
   * A list count of at most MAX_LIST_LENGTH whose items, at `minItemLength` bytes or more
   * each, fit in the bytes left.
   */
  count(field: string, minItemLength: number): number {
    const n = this.varint(field);
    if (n > MAX_LIST_LENGTH) {
      this.fail('BRAID_ERR_WIRE_TOO_LARGE', field, `has over ${MAX_LIST_LENGTH} items`, n);
    }
    if (n * minItemLength > this.end - this.pos) {
      this.fail('BRAID_ERR_WIRE_TRUNCATED', field, 'has more items than bytes left', n);
    }
    return n;
  }

  /** A varint index into `values`. */
  enumValue<T>(field: string, values: readonly T[]): T {
    const index = this.varint(field);
    const value = values[index];
    if (value === undefined) this.fail('BRAID_ERR_WIRE_BAD_VALUE', field, 'is unknown', index);
    return value;
  }
}

/**
 * The failure result for an error thrown by a WireReader. Anything other than a
 * BraidError is a bug in the decoder and propagates.
 */
export function toFailure(err: unknown): { ok: false; error: BraidError } {
  if (err instanceof BraidError) return { ok: false, error: err };
  throw err;
}

const FRAME_NAMES: readonly (string | undefined)[] = (() => {
  const names: (string | undefined)[] = [];
  for (const [name, type] of Object.entries(FrameType)) names[type] = `${name} frame`;
  return names;
})();

function readStringList(r: WireReader, field: string): string[] {
  // Each string has at least its length byte.
  const n = r.count(field, 1);
  const list: string[] = [];
  for (let i = 0; i < n; i++) list.push(r.string(field));
  return list;
}

function readTransportList(r: WireReader): TransportKind[] {
  const n = r.count('transports', 1);
  const list: TransportKind[] = [];
  for (let i = 0; i < n; i++) list.push(r.enumValue('transports', TRANSPORT_KINDS));
  return list;
}

function readAck(r: WireReader): Frame {
  const pathId = r.varint('pathId');
  let largest = r.varint('largest');
  const ackDelayMicros = r.varint('ackDelayMicros');
  const extra = r.varint('rangeCount');
  if (extra >= MAX_LIST_LENGTH) {
    r.fail('BRAID_ERR_WIRE_TOO_LARGE', 'rangeCount', `is over ${MAX_LIST_LENGTH}`, extra + 1);
  }
  // firstRangeLength and each (gap, rangeLength) pair take at least one byte per varint.
  if (1 + 2 * extra > r.remaining) {
    r.fail('BRAID_ERR_WIRE_TRUNCATED', 'rangeCount', 'has more ranges than bytes left', extra);
  }
  let length = r.varint('firstRangeLength');
  if (length > largest) r.fail('BRAID_ERR_WIRE_BAD_VALUE', 'firstRangeLength', 'below 0', length);
  let smallest = largest - length;
  const ranges: AckRange[] = [{ first: smallest, last: largest }];
  for (let i = 0; i < extra; i++) {
    const gap = r.varint('gap');
    length = r.varint('rangeLength');
    // RFC 9000 §19.3.1: largest = previous smallest - gap - 2.
    if (gap + 2 > smallest) r.fail('BRAID_ERR_WIRE_BAD_VALUE', 'gap', 'goes below 0', gap);
    largest = smallest - gap - 2;
    if (length > largest) r.fail('BRAID_ERR_WIRE_BAD_VALUE', 'rangeLength', 'goes below 0', length);
    smallest = largest - length;
    ranges.push({ first: smallest, last: largest });
  }
  return { type: 'ack', pathId, ackDelayMicros, ranges };
}

function readFeedback(r: WireReader): Frame {
  const sessionId = r.varint('sessionId');
  const presence = r.u8('presence');
  if ((presence & 0xf0) !== 0) {
    r.fail('BRAID_ERR_WIRE_BAD_VALUE', 'presence', 'has reserved bits set', presence);
  }
  const frame: FeedbackFrame = { type: 'feedback', sessionId };
  if ((presence & 0x01) !== 0) frame.latencyMicros = r.varint('latencyMicros');
  if ((presence & 0x02) !== 0) frame.jitterMicros = r.varint('jitterMicros');
  if ((presence & 0x04) !== 0) frame.lossPpm = r.varint('lossPpm');
  if ((presence & 0x08) !== 0) frame.throughputBps = r.varint('throughputBps');
  return frame;
}

/** An OPEN's or POLICY's priority list: a count, then each objective's index. */
function readPriorities(r: WireReader): Objective[] {
  const n = r.count('priorities', 1);
  const priorities: Objective[] = [];
  for (let i = 0; i < n; i++) priorities.push(r.enumValue('priorities', OBJECTIVES));
  return priorities;
}

/** OPEN_POLICY's and POLICY's policy fields (frame.ts OpenPolicy). */
function readOpenPolicy(r: WireReader): OpenPolicy {
  const presence = r.u8('policy presence');
  if ((presence & 0xe0) !== 0) {
    r.fail('BRAID_ERR_WIRE_BAD_VALUE', 'policy presence', 'has reserved bits set', presence);
  }
  const policy: OpenPolicy = {};
  const slider = (field: 'lossVsThroughputPpm' | 'latencyVsThroughputPpm'): void => {
    const v = r.varint(field);
    if (v > SLIDER_SCALE) r.fail('BRAID_ERR_WIRE_BAD_VALUE', field, `is above ${SLIDER_SCALE}`, v);
    policy[field] = v;
  };
  const epsilon = (
    field: 'epsilonLatencyMicros' | 'epsilonJitterMicros' | 'epsilonLossPpm',
  ): void => {
    const v = r.varint(field);
    if (v === 0) r.fail('BRAID_ERR_WIRE_BAD_VALUE', field, 'must be positive', v);
    policy[field] = v;
  };
  if ((presence & 0x01) !== 0) slider('lossVsThroughputPpm');
  if ((presence & 0x02) !== 0) slider('latencyVsThroughputPpm');
  if ((presence & 0x04) !== 0) epsilon('epsilonLatencyMicros');
  if ((presence & 0x08) !== 0) epsilon('epsilonJitterMicros');
  if ((presence & 0x10) !== 0) epsilon('epsilonLossPpm');
  return policy;
}

function readFrame(r: WireReader): Frame {
  r.context = 'frame';
  const type = r.u8('type');
  const name = FRAME_NAMES[type];
  if (name === undefined) {
    r.pos--;
    r.fail('BRAID_ERR_WIRE_UNKNOWN_FRAME', 'type', 'is unknown', type);
  }
  r.context = name;
  switch (type) {
    case FrameType.PADDING: {
      const length = r.varint('length');
      const zeros = r.raw('padding', length);
      for (let i = 0; i < zeros.length; i++) {
        if (zeros[i] !== 0) r.fail('BRAID_ERR_WIRE_BAD_VALUE', 'padding', 'is not zero', i);
      }
      return { type: 'padding', length };
    }
    case FrameType.STREAM: {
      const flags = r.u8('flags');
      if ((flags & 0xfe) !== 0) {
        r.fail('BRAID_ERR_WIRE_BAD_VALUE', 'flags', 'has reserved bits set', flags);
      }
      const sessionId = r.varint('sessionId');
      const offset = r.varint('offset');
      const data = r.bytes('data');
      return { type: 'stream', sessionId, offset, fin: flags === 1, data };
    }
    case FrameType.DATAGRAM: {
      const sessionId = r.varint('sessionId');
      const messageNumber = r.varint('messageNumber');
      const data = r.bytes('data');
      return { type: 'datagram', sessionId, messageNumber, data };
    }
    case FrameType.DATAGRAM_STAMPED: {
      const sessionId = r.varint('sessionId');
      const messageNumber = r.varint('messageNumber');
      const sentAtMicros = r.varint('sentAtMicros');
      const data = r.bytes('data');
      return { type: 'datagram', sessionId, messageNumber, sentAtMicros, data };
    }
    case FrameType.ACK:
      return readAck(r);
    case FrameType.OPEN:
    case FrameType.OPEN_POLICY: {
      const sessionId = r.varint('sessionId');
      const semantics = r.enumValue('semantics', SEMANTICS);
      const priorities = readPriorities(r);
      const target = r.string('target');
      const deadlineMs = r.varint('deadlineMs');
      if (type === FrameType.OPEN) {
        return { type: 'open', sessionId, semantics, priorities, target, deadlineMs };
      }
      const policy = readOpenPolicy(r);
      return { type: 'open', sessionId, semantics, priorities, target, deadlineMs, policy };
    }
    case FrameType.POLICY: {
      const sessionId = r.varint('sessionId');
      const sequence = r.varint('sequence');
      const priorities = readPriorities(r);
      return { type: 'policy', sessionId, sequence, priorities, policy: readOpenPolicy(r) };
    }
    case FrameType.CLOSE:
    case FrameType.RESET: {
      const sessionId = r.varint('sessionId');
      const code = r.varint('code');
      const reason = r.string('reason');
      return { type: type === FrameType.CLOSE ? 'close' : 'reset', sessionId, code, reason };
    }
    case FrameType.PROBE: {
      const probeId = r.varint('probeId');
      const sentAtMicros = r.varint('sentAtMicros');
      return { type: 'probe', probeId, sentAtMicros };
    }
    case FrameType.PROBE_ACK: {
      const probeId = r.varint('probeId');
      const sentAtMicros = r.varint('sentAtMicros');
      const packetSize = r.varint('packetSize');
      return { type: 'probe_ack', probeId, sentAtMicros, packetSize };
    }
    case FrameType.PATH_STATUS: {
      const pathId = r.varint('pathId');
      const state = r.enumValue('state', PATH_STATES);
      const sequence = r.varint('sequence');
      return { type: 'path_status', pathId, state, sequence };
    }
    case FrameType.FEEDBACK:
      return readFeedback(r);
    case FrameType.MAX_DATA: {
      const sessionId = r.varint('sessionId');
      const maxOffset = r.varint('maxOffset');
      return { type: 'max_data', sessionId, maxOffset };
    }
    case FrameType.HELLO: {
      const version = r.varint('version');
      const keyId = r.bytes('keyId');
      const proof = r.raw('proof', MAC_LENGTH);
      const addresses = readStringList(r, 'addresses');
      const transports = readTransportList(r);
      return { type: 'hello', version, keyId, proof, addresses, transports };
    }
    case FrameType.HELLO_ACK: {
      const version = r.varint('version');
      const associationId = r.raw('associationId', ASSOCIATION_ID_LENGTH);
      const addresses = readStringList(r, 'addresses');
      const udpPort = r.varint('udpPort');
      const tcpPort = r.varint('tcpPort');
      const transports = readTransportList(r);
      return { type: 'hello_ack', version, associationId, addresses, udpPort, tcpPort, transports };
    }
    case FrameType.JOIN: {
      const associationId = r.raw('associationId', ASSOCIATION_ID_LENGTH);
      const pathId = r.varint('pathId');
      const transport = r.enumValue('transport', TRANSPORT_KINDS);
      const mac = r.raw('mac', MAC_LENGTH);
      return { type: 'join', associationId, pathId, transport, mac };
    }
    case FrameType.JOIN_ACK: {
      const pathId = r.varint('pathId');
      const maxPacketSize = r.varint('maxPacketSize');
      return { type: 'join_ack', pathId, maxPacketSize };
    }
    case FrameType.ERROR: {
      const code = r.varint('code');
      const reason = r.string('reason');
      return { type: 'error', code, reason };
    }
    default:
      // FRAME_NAMES and this switch list the same types.
      throw new BraidError('BRAID_ERR_INTERNAL', 'frame type without a decoder', { value: type });
  }
}

/** Decodes the frame at `pos`; `next` is the position after it. */
export function decodeFrame(
  buf: Uint8Array,
  pos: number,
): DecodeResult<{ frame: Frame; next: number }> {
  if (!Number.isSafeInteger(pos) || pos < 0 || pos > buf.length) {
    return {
      ok: false,
      error: new BraidError('BRAID_ERR_WIRE_TRUNCATED', 'decode position outside the buffer', {
        value: pos,
      }),
    };
  }
  const r = new WireReader(buf, pos, buf.length);
  try {
    const frame = readFrame(r);
    return { ok: true, value: { frame, next: r.pos } };
  } catch (err) {
    return toFailure(err);
  }
}

/**
 * Decodes a whole packet payload: one or more frames filling it exactly. An error in
 * any frame fails the payload, since its frames cannot be separated reliably.
 */
export function decodeFrames(buf: Uint8Array): DecodeResult<Frame[]> {
  if (buf.length === 0) {
    return {
      ok: false,
      error: new BraidError('BRAID_ERR_WIRE_TRUNCATED', 'payload holds no frame', { value: 0 }),
    };
  }
  const r = new WireReader(buf, 0, buf.length);
  const frames: Frame[] = [];
  try {
    while (r.pos < r.end) frames.push(readFrame(r));
  } catch (err) {
    return toFailure(err);
  }
  return { ok: true, value: frames };
}
