/**
 * Frame encoder for the encoding documented in core/wire/frame.ts. `frameLength`
 * validates a frame and measures it; the writers then trust the frame, so a frame is
 * either written whole or not at all. Every varint is written in its shortest form,
 * which the decoder requires (one encoding per frame).
 */
import { BraidError } from '../util/errors.js';
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
  type AckFrame,
  type Objective,
  type OpenFrame,
  type PolicyFrame,
  type Frame,
  type FeedbackFrame,
  type TransportKind,
} from './frame.js';
import { isVarintValue, varintLength, writeVarintUnchecked } from './varint.js';

/** Largest header of a STREAM frame: type, flags, and three 8-byte varints. */
export const STREAM_FRAME_OVERHEAD_MAX = 1 + 1 + 8 + 8 + 8;

/**
 * Bytes a STREAM frame's header takes for a session, at most `maxOffset` and at most
 * `maxLength` bytes of data: what a packet must keep free before its data. Sizing the
 * data by STREAM_FRAME_OVERHEAD_MAX instead left about 18 bytes of every full packet
 * empty (a 9-byte header in a 27-byte reservation), 1.2% of a bulk stream's goodput.
 */
export function streamFrameHeaderLength(
  sessionId: number,
  maxOffset: number,
  maxLength: number,
): number {
  return 2 + varintLength(sessionId) + varintLength(maxOffset) + varintLength(maxLength);
}

/** STREAM flags byte (frame.ts). */
const STREAM_FLAG_FIN = 0x01;

/** FEEDBACK presence bits (frame.ts). */
export const FEEDBACK_LATENCY = 0x01;
export const FEEDBACK_JITTER = 0x02;
export const FEEDBACK_LOSS = 0x04;
export const FEEDBACK_THROUGHPUT = 0x08;

/** OPEN_POLICY presence bits (frame.ts OpenPolicy). */
export const POLICY_LOSS_SLIDER = 0x01;
export const POLICY_LATENCY_SLIDER = 0x02;
export const POLICY_EPSILON_LATENCY = 0x04;
export const POLICY_EPSILON_JITTER = 0x08;
export const POLICY_EPSILON_LOSS = 0x10;

// RFC 3629 forbids encoding surrogates; a lone one would come back as U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function badValue(frame: Frame, field: string, value: unknown, why: string): never {
  throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', `${frame.type} frame: ${field} ${why}`, {
    value,
  });
}

/** Encoded size of integer field `v`, after checking it is 0..2^53-1. */
function intLength(frame: Frame, field: string, v: number): number {
  if (!isVarintValue(v)) badValue(frame, field, v, 'is not an integer in 0..2^53-1');
  return varintLength(v);
}

function bytesLength(frame: Frame, field: string, data: Uint8Array): number {
  if (!(data instanceof Uint8Array)) badValue(frame, field, data, 'is not a Uint8Array');
  return varintLength(data.length) + data.length;
}

function fixedLength(frame: Frame, field: string, data: Uint8Array, length: number): number {
  if (!(data instanceof Uint8Array) || data.length !== length) {
    badValue(frame, field, data, `must be ${length} bytes`);
  }
  return length;
}

function stringLength(frame: Frame, field: string, s: string): number {
  if (typeof s !== 'string') badValue(frame, field, s, 'is not a string');
  const n = Buffer.byteLength(s, 'utf8');
  if (n > MAX_STRING_LENGTH) badValue(frame, field, s, `is over ${MAX_STRING_LENGTH} bytes`);
  if (LONE_SURROGATE.test(s)) badValue(frame, field, s, 'holds a lone surrogate');
  return varintLength(n) + n;
}

function listCountLength(frame: Frame, field: string, count: number): number {
  if (count > MAX_LIST_LENGTH) badValue(frame, field, count, `has over ${MAX_LIST_LENGTH} items`);
  return varintLength(count);
}

function enumIndex<T>(frame: Frame, field: string, values: readonly T[], v: T): number {
  const index = values.indexOf(v);
  if (index < 0) badValue(frame, field, v, 'is not a known value');
  return index;
}

function stringListLength(frame: Frame, field: string, list: readonly string[]): number {
  let n = listCountLength(frame, field, list.length);
  for (const s of list) n += stringLength(frame, field, s);
  return n;
}

function transportListLength(frame: Frame, list: readonly TransportKind[]): number {
  let n = listCountLength(frame, 'transports', list.length);
  for (const t of list) n += varintLength(enumIndex(frame, 'transports', TRANSPORT_KINDS, t));
  return n;
}

function ackLength(frame: AckFrame): number {
  const ranges = frame.ranges;
  if (ranges.length === 0) badValue(frame, 'ranges', ranges, 'is empty');
  listCountLength(frame, 'ranges', ranges.length);
  let n =
    1 +
    intLength(frame, 'pathId', frame.pathId) +
    intLength(frame, 'ackDelayMicros', frame.ackDelayMicros) +
    varintLength(ranges.length - 1);
  let previousFirst = 0;
  for (let i = 0; i < ranges.length; i++) {
    const range = ranges[i]!;
    intLength(frame, 'ranges.first', range.first);
    intLength(frame, 'ranges.last', range.last);
    if (range.first > range.last) badValue(frame, 'ranges', range, 'has first above last');
    if (i === 0) {
      n += varintLength(range.last); // largest acknowledged
    } else {
      // RFC 9000 §19.3.1: gap = previous smallest - largest - 2, so ranges descend with at
      // least one unacknowledged packet between them.
      if (range.last + 2 > previousFirst) {
        badValue(frame, 'ranges', range, 'is not below the previous range with a gap');
      }
      n += varintLength(previousFirst - range.last - 2);
    }
    n += varintLength(range.last - range.first);
    previousFirst = range.first;
  }
  return n;
}

function feedbackLength(frame: FeedbackFrame): number {
  let n = 1 + intLength(frame, 'sessionId', frame.sessionId) + 1;
  if (frame.latencyMicros !== undefined)
    n += intLength(frame, 'latencyMicros', frame.latencyMicros);
  if (frame.jitterMicros !== undefined) n += intLength(frame, 'jitterMicros', frame.jitterMicros);
  if (frame.lossPpm !== undefined) n += intLength(frame, 'lossPpm', frame.lossPpm);
  if (frame.throughputBps !== undefined)
    n += intLength(frame, 'throughputBps', frame.throughputBps);
  return n;
}

/** Encoded size of an OPEN's or POLICY's priority list; checks each objective. */
function prioritiesLength(frame: OpenFrame | PolicyFrame): number {
  let n = listCountLength(frame, 'priorities', frame.priorities.length);
  for (const o of frame.priorities)
    n += varintLength(enumIndex(frame, 'priorities', OBJECTIVES, o));
  return n;
}

function writePriorities(buf: Buffer, pos: number, priorities: readonly Objective[]): number {
  pos = writeVarintUnchecked(buf, pos, priorities.length);
  for (const o of priorities) pos = writeVarintUnchecked(buf, pos, OBJECTIVES.indexOf(o));
  return pos;
}

/** The OpenPolicy fields in presence-bit order. */
const POLICY_FIELDS = [
  'lossVsThroughputPpm',
  'latencyVsThroughputPpm',
  'epsilonLatencyMicros',
  'epsilonJitterMicros',
  'epsilonLossPpm',
] as const;

/** Encoded size of an OPEN's or POLICY's policy (presence byte and values); checks each value. */
function openPolicyLength(frame: OpenFrame | PolicyFrame): number {
  const policy = frame.policy;
  if (policy === undefined) return 0;
  let n = 1;
  for (let i = 0; i < POLICY_FIELDS.length; i++) {
    const field = POLICY_FIELDS[i]!;
    const v = policy[field];
    if (v === undefined) continue;
    n += intLength(frame, field, v);
    if (i < 2 && v > SLIDER_SCALE) badValue(frame, field, v, `is above ${SLIDER_SCALE}`);
    if (i >= 2 && v === 0) badValue(frame, field, v, 'must be positive');
  }
  return n;
}

function writeOpenPolicy(buf: Buffer, pos: number, frame: OpenFrame | PolicyFrame): number {
  const policy = frame.policy!;
  let presence = 0;
  for (let i = 0; i < POLICY_FIELDS.length; i++) {
    if (policy[POLICY_FIELDS[i]!] !== undefined) presence |= 1 << i;
  }
  buf[pos++] = presence;
  for (const field of POLICY_FIELDS) {
    const v = policy[field];
    if (v !== undefined) pos = writeVarintUnchecked(buf, pos, v);
  }
  return pos;
}

/**
 * Exact encoded size of `frame`. Throws BRAID_ERR_WIRE_BAD_VALUE when a field cannot be
 * encoded (negative or non-integer number, string over MAX_STRING_LENGTH bytes, list
 * over MAX_LIST_LENGTH items, wrong length of a fixed-size field, unknown enum value,
 * ACK ranges that are empty, overlapping, adjacent or not descending).
 */
export function frameLength(frame: Frame): number {
  switch (frame.type) {
    case 'padding':
      return 1 + intLength(frame, 'length', frame.length) + frame.length;
    case 'stream':
      return (
        2 +
        intLength(frame, 'sessionId', frame.sessionId) +
        intLength(frame, 'offset', frame.offset) +
        bytesLength(frame, 'data', frame.data)
      );
    case 'datagram':
      return (
        1 +
        intLength(frame, 'sessionId', frame.sessionId) +
        intLength(frame, 'messageNumber', frame.messageNumber) +
        (frame.sentAtMicros === undefined
          ? 0
          : intLength(frame, 'sentAtMicros', frame.sentAtMicros)) +
        bytesLength(frame, 'data', frame.data)
      );
    case 'ack':
      return ackLength(frame);
    case 'open':
      return (
        1 +
        intLength(frame, 'sessionId', frame.sessionId) +
        varintLength(enumIndex(frame, 'semantics', SEMANTICS, frame.semantics)) +
        prioritiesLength(frame) +
        stringLength(frame, 'target', frame.target) +
        intLength(frame, 'deadlineMs', frame.deadlineMs) +
        openPolicyLength(frame)
      );
    case 'policy':
      return (
        1 +
        intLength(frame, 'sessionId', frame.sessionId) +
        intLength(frame, 'sequence', frame.sequence) +
        prioritiesLength(frame) +
        openPolicyLength(frame)
      );
    case 'close':
    case 'reset':
      return (
        1 +
        intLength(frame, 'sessionId', frame.sessionId) +
        intLength(frame, 'code', frame.code) +
        stringLength(frame, 'reason', frame.reason)
      );
    case 'probe':
      return (
        1 +
        intLength(frame, 'probeId', frame.probeId) +
        intLength(frame, 'sentAtMicros', frame.sentAtMicros)
      );
    case 'probe_ack':
      return (
        1 +
        intLength(frame, 'probeId', frame.probeId) +
        intLength(frame, 'sentAtMicros', frame.sentAtMicros) +
        intLength(frame, 'packetSize', frame.packetSize)
      );
    case 'path_status':
      return (
        1 +
        intLength(frame, 'pathId', frame.pathId) +
        varintLength(enumIndex(frame, 'state', PATH_STATES, frame.state)) +
        intLength(frame, 'sequence', frame.sequence)
      );
    case 'feedback':
      return feedbackLength(frame);
    case 'max_data':
      return (
        1 +
        intLength(frame, 'sessionId', frame.sessionId) +
        intLength(frame, 'maxOffset', frame.maxOffset)
      );
    case 'hello':
      return (
        1 +
        intLength(frame, 'version', frame.version) +
        bytesLength(frame, 'keyId', frame.keyId) +
        fixedLength(frame, 'proof', frame.proof, MAC_LENGTH) +
        stringListLength(frame, 'addresses', frame.addresses) +
        transportListLength(frame, frame.transports)
      );
    case 'hello_ack':
      return (
        1 +
        intLength(frame, 'version', frame.version) +
        fixedLength(frame, 'associationId', frame.associationId, ASSOCIATION_ID_LENGTH) +
        stringListLength(frame, 'addresses', frame.addresses) +
        intLength(frame, 'udpPort', frame.udpPort) +
        intLength(frame, 'tcpPort', frame.tcpPort) +
        transportListLength(frame, frame.transports)
      );
    case 'join':
      return (
        1 +
        fixedLength(frame, 'associationId', frame.associationId, ASSOCIATION_ID_LENGTH) +
        intLength(frame, 'pathId', frame.pathId) +
        varintLength(enumIndex(frame, 'transport', TRANSPORT_KINDS, frame.transport)) +
        fixedLength(frame, 'mac', frame.mac, MAC_LENGTH)
      );
    case 'join_ack':
      return (
        1 +
        intLength(frame, 'pathId', frame.pathId) +
        intLength(frame, 'maxPacketSize', frame.maxPacketSize)
      );
    case 'error':
      return 1 + intLength(frame, 'code', frame.code) + stringLength(frame, 'reason', frame.reason);
    default:
      return unknownFrame(frame);
  }
}

function unknownFrame(frame: never): never {
  throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', 'not a frame', {
    value: (frame as { type?: unknown }).type,
  });
}

function checkRoom(buf: Uint8Array, pos: number, length: number): void {
  if (!Number.isSafeInteger(pos) || pos < 0 || pos + length > buf.length) {
    throw new BraidError(
      'BRAID_ERR_WIRE_TOO_LARGE',
      `${length} bytes do not fit the buffer of ${buf.length} at ${pos}`,
      { value: length },
    );
  }
}

/**
 * Writes `frame` at `pos` and returns the position after it. Throws
 * BRAID_ERR_WIRE_BAD_VALUE as `frameLength` does, and BRAID_ERR_WIRE_TOO_LARGE when the
 * frame does not fit in `buf` (nothing is written then).
 */
export function encodeFrame(frame: Frame, buf: Buffer, pos: number): number {
  checkRoom(buf, pos, frameLength(frame));
  return writeFrame(frame, buf, pos);
}

/** Encodes a packet payload; at least one frame, as `decodeFrames` requires. */
export function encodeFrames(frames: readonly Frame[]): Buffer {
  if (frames.length === 0) {
    throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', 'a payload needs at least one frame', {
      value: 0,
    });
  }
  let total = 0;
  for (const frame of frames) total += frameLength(frame);
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const frame of frames) pos = writeFrame(frame, buf, pos);
  return buf;
}

/**
 * Writes the header of a STREAM frame whose `dataLength` bytes of data the caller copies
 * right after the returned position (per-packet hot path: no frame object, no copy).
 * Throws BRAID_ERR_WIRE_BAD_VALUE for an integer out of range and
 * BRAID_ERR_WIRE_TOO_LARGE when header and data do not fit in `buf`.
 */
export function writeStreamFrameHeader(
  buf: Buffer,
  pos: number,
  sessionId: number,
  offset: number,
  fin: boolean,
  dataLength: number,
): number {
  if (!isVarintValue(sessionId) || !isVarintValue(offset) || !isVarintValue(dataLength)) {
    throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', 'stream frame: integer out of range', {
      value: `sessionId ${sessionId} offset ${offset} length ${dataLength}`,
    });
  }
  checkRoom(
    buf,
    pos,
    2 + varintLength(sessionId) + varintLength(offset) + varintLength(dataLength) + dataLength,
  );
  buf[pos] = FrameType.STREAM;
  buf[pos + 1] = fin ? STREAM_FLAG_FIN : 0;
  pos = writeVarintUnchecked(buf, pos + 2, sessionId);
  pos = writeVarintUnchecked(buf, pos, offset);
  return writeVarintUnchecked(buf, pos, dataLength);
}

// Writers below run after frameLength validated the frame and checkRoom the space.

function writeBytes(buf: Buffer, pos: number, data: Uint8Array): number {
  pos = writeVarintUnchecked(buf, pos, data.length);
  buf.set(data, pos);
  return pos + data.length;
}

function writeString(buf: Buffer, pos: number, s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  pos = writeVarintUnchecked(buf, pos, n);
  return pos + buf.write(s, pos, n, 'utf8');
}

function writeStringList(buf: Buffer, pos: number, list: readonly string[]): number {
  pos = writeVarintUnchecked(buf, pos, list.length);
  for (const s of list) pos = writeString(buf, pos, s);
  return pos;
}

function writeTransportList(buf: Buffer, pos: number, list: readonly TransportKind[]): number {
  pos = writeVarintUnchecked(buf, pos, list.length);
  for (const t of list) pos = writeVarintUnchecked(buf, pos, TRANSPORT_KINDS.indexOf(t));
  return pos;
}

function writeAck(buf: Buffer, pos: number, frame: AckFrame): number {
  const ranges = frame.ranges;
  const top = ranges[0]!;
  buf[pos] = FrameType.ACK;
  pos = writeVarintUnchecked(buf, pos + 1, frame.pathId);
  pos = writeVarintUnchecked(buf, pos, top.last);
  pos = writeVarintUnchecked(buf, pos, frame.ackDelayMicros);
  pos = writeVarintUnchecked(buf, pos, ranges.length - 1);
  pos = writeVarintUnchecked(buf, pos, top.last - top.first);
  let previousFirst = top.first;
  for (let i = 1; i < ranges.length; i++) {
    const range = ranges[i]!;
    // RFC 9000 §19.3.1
    pos = writeVarintUnchecked(buf, pos, previousFirst - range.last - 2);
    pos = writeVarintUnchecked(buf, pos, range.last - range.first);
    previousFirst = range.first;
  }
  return pos;
}

function writeFeedback(buf: Buffer, pos: number, frame: FeedbackFrame): number {
  buf[pos] = FrameType.FEEDBACK;
  pos = writeVarintUnchecked(buf, pos + 1, frame.sessionId);
  const presence =
    (frame.latencyMicros !== undefined ? FEEDBACK_LATENCY : 0) |
    (frame.jitterMicros !== undefined ? FEEDBACK_JITTER : 0) |
    (frame.lossPpm !== undefined ? FEEDBACK_LOSS : 0) |
    (frame.throughputBps !== undefined ? FEEDBACK_THROUGHPUT : 0);
  buf[pos++] = presence;
  if (frame.latencyMicros !== undefined) pos = writeVarintUnchecked(buf, pos, frame.latencyMicros);
  if (frame.jitterMicros !== undefined) pos = writeVarintUnchecked(buf, pos, frame.jitterMicros);
  if (frame.lossPpm !== undefined) pos = writeVarintUnchecked(buf, pos, frame.lossPpm);
  if (frame.throughputBps !== undefined) pos = writeVarintUnchecked(buf, pos, frame.throughputBps);
  return pos;
}

function writeFrame(frame: Frame, buf: Buffer, pos: number): number {
  switch (frame.type) {
    case 'padding': {
      buf[pos] = FrameType.PADDING;
      pos = writeVarintUnchecked(buf, pos + 1, frame.length);
      buf.fill(0, pos, pos + frame.length);
      return pos + frame.length;
    }
    case 'stream':
      buf[pos] = FrameType.STREAM;
      buf[pos + 1] = frame.fin ? STREAM_FLAG_FIN : 0;
      pos = writeVarintUnchecked(buf, pos + 2, frame.sessionId);
      pos = writeVarintUnchecked(buf, pos, frame.offset);
      return writeBytes(buf, pos, frame.data);
    case 'datagram':
      buf[pos] = frame.sentAtMicros === undefined ? FrameType.DATAGRAM : FrameType.DATAGRAM_STAMPED;
      pos = writeVarintUnchecked(buf, pos + 1, frame.sessionId);
      pos = writeVarintUnchecked(buf, pos, frame.messageNumber);
      if (frame.sentAtMicros !== undefined)
        pos = writeVarintUnchecked(buf, pos, frame.sentAtMicros);
      return writeBytes(buf, pos, frame.data);
    case 'ack':
      return writeAck(buf, pos, frame);
    case 'open':
      buf[pos] = frame.policy === undefined ? FrameType.OPEN : FrameType.OPEN_POLICY;
      pos = writeVarintUnchecked(buf, pos + 1, frame.sessionId);
      pos = writeVarintUnchecked(buf, pos, SEMANTICS.indexOf(frame.semantics));
      pos = writePriorities(buf, pos, frame.priorities);
      pos = writeString(buf, pos, frame.target);
      pos = writeVarintUnchecked(buf, pos, frame.deadlineMs);
      return frame.policy === undefined ? pos : writeOpenPolicy(buf, pos, frame);
    case 'policy':
      buf[pos] = FrameType.POLICY;
      pos = writeVarintUnchecked(buf, pos + 1, frame.sessionId);
      pos = writeVarintUnchecked(buf, pos, frame.sequence);
      pos = writePriorities(buf, pos, frame.priorities);
      return writeOpenPolicy(buf, pos, frame);
    case 'close':
    case 'reset':
      buf[pos] = frame.type === 'close' ? FrameType.CLOSE : FrameType.RESET;
      pos = writeVarintUnchecked(buf, pos + 1, frame.sessionId);
      pos = writeVarintUnchecked(buf, pos, frame.code);
      return writeString(buf, pos, frame.reason);
    case 'probe':
      buf[pos] = FrameType.PROBE;
      pos = writeVarintUnchecked(buf, pos + 1, frame.probeId);
      return writeVarintUnchecked(buf, pos, frame.sentAtMicros);
    case 'probe_ack':
      buf[pos] = FrameType.PROBE_ACK;
      pos = writeVarintUnchecked(buf, pos + 1, frame.probeId);
      pos = writeVarintUnchecked(buf, pos, frame.sentAtMicros);
      return writeVarintUnchecked(buf, pos, frame.packetSize);
    case 'path_status':
      buf[pos] = FrameType.PATH_STATUS;
      pos = writeVarintUnchecked(buf, pos + 1, frame.pathId);
      pos = writeVarintUnchecked(buf, pos, PATH_STATES.indexOf(frame.state));
      return writeVarintUnchecked(buf, pos, frame.sequence);
    case 'feedback':
      return writeFeedback(buf, pos, frame);
    case 'max_data':
      buf[pos] = FrameType.MAX_DATA;
      pos = writeVarintUnchecked(buf, pos + 1, frame.sessionId);
      return writeVarintUnchecked(buf, pos, frame.maxOffset);
    case 'hello':
      buf[pos] = FrameType.HELLO;
      pos = writeVarintUnchecked(buf, pos + 1, frame.version);
      pos = writeBytes(buf, pos, frame.keyId);
      buf.set(frame.proof, pos);
      pos = writeStringList(buf, pos + MAC_LENGTH, frame.addresses);
      return writeTransportList(buf, pos, frame.transports);
    case 'hello_ack':
      buf[pos] = FrameType.HELLO_ACK;
      pos = writeVarintUnchecked(buf, pos + 1, frame.version);
      buf.set(frame.associationId, pos);
      pos = writeStringList(buf, pos + ASSOCIATION_ID_LENGTH, frame.addresses);
      pos = writeVarintUnchecked(buf, pos, frame.udpPort);
      pos = writeVarintUnchecked(buf, pos, frame.tcpPort);
      return writeTransportList(buf, pos, frame.transports);
    case 'join':
      buf[pos] = FrameType.JOIN;
      buf.set(frame.associationId, pos + 1);
      pos = writeVarintUnchecked(buf, pos + 1 + ASSOCIATION_ID_LENGTH, frame.pathId);
      pos = writeVarintUnchecked(buf, pos, TRANSPORT_KINDS.indexOf(frame.transport));
      buf.set(frame.mac, pos);
      return pos + MAC_LENGTH;
    case 'join_ack':
      buf[pos] = FrameType.JOIN_ACK;
      pos = writeVarintUnchecked(buf, pos + 1, frame.pathId);
      return writeVarintUnchecked(buf, pos, frame.maxPacketSize);
    case 'error':
      buf[pos] = FrameType.ERROR;
      pos = writeVarintUnchecked(buf, pos + 1, frame.code);
      return writeString(buf, pos, frame.reason);
    default:
      return unknownFrame(frame);
  }
}
