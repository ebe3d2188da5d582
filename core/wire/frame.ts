/**
 * Braid's frames (DESIGN §3). A packet on a path carries one or more frames; the
 * TLS control connection carries HELLO, HELLO_ACK and ERROR frames as records.
 *
 * Encoding: each frame starts with its one-byte type (`FrameType`) followed by its
 * fields in the order listed here. Integers are QUIC variable-length integers
 * (RFC 9000 §16) limited to 2^53-1 so that they fit a JS number; "bytes" fields are
 * a varint length followed by that many bytes; "string" fields are UTF-8 bytes with a
 * varint length of at most 255; lists are a varint count followed by the items.
 * Fixed-size fields (ids, MACs) are written raw.
 */

/** Version of the wire protocol, carried in every packet header and in HELLO. */
export const WIRE_VERSION = 1;

export const FrameType = {
  PADDING: 0x00,
  STREAM: 0x01,
  DATAGRAM: 0x02,
  ACK: 0x03,
  OPEN: 0x04,
  CLOSE: 0x05,
  RESET: 0x06,
  PROBE: 0x07,
  PROBE_ACK: 0x08,
  PATH_STATUS: 0x09,
  FEEDBACK: 0x0a,
  MAX_DATA: 0x0b,
  HELLO: 0x10,
  HELLO_ACK: 0x11,
  JOIN: 0x12,
  JOIN_ACK: 0x13,
  ERROR: 0x14,
  /** A DATAGRAM frame with the sender's send-time stamp (unreliable-ordered sessions). */
  DATAGRAM_STAMPED: 0x15,
  /** An OPEN frame followed by the opener's sliders and tolerances. */
  OPEN_POLICY: 0x16,
  /** An open session's new priorities, sliders and tolerances. */
  POLICY: 0x17,
} as const;

export type FrameTypeName = keyof typeof FrameType;

/** Length in bytes of an association id. */
export const ASSOCIATION_ID_LENGTH = 8;
/** Length in bytes of the HMAC-SHA256 in JOIN and of the client proof in HELLO. */
export const MAC_LENGTH = 32;
/** Longest string field (addresses, reasons, targets). */
export const MAX_STRING_LENGTH = 255;
/** Most items in any list field (addresses, transports, ACK ranges, priorities). */
export const MAX_LIST_LENGTH = 64;

export type TransportKind = 'udp' | 'tcp';
export const TRANSPORT_KINDS: readonly TransportKind[] = ['udp', 'tcp'];

/** Delivery semantics of a session (paper §III-A, DESIGN §3 table). */
export type Semantics =
  'unreliable-unordered' | 'reliable-unordered' | 'unreliable-ordered' | 'reliable-ordered';
export const SEMANTICS: readonly Semantics[] = [
  'unreliable-unordered',
  'reliable-unordered',
  'unreliable-ordered',
  'reliable-ordered',
];

/** Performance objectives (paper §III-A), ranked per app in a static priority order. */
export type Objective = 'throughput' | 'latency' | 'jitter' | 'loss';
export const OBJECTIVES: readonly Objective[] = ['throughput', 'latency', 'jitter', 'loss'];

export type PathState = 'active' | 'standby' | 'suspect' | 'closing';
export const PATH_STATES: readonly PathState[] = ['active', 'standby', 'suspect', 'closing'];

/** Zero bytes used to grow a packet (path MTU probes). Encoded: type, varint length, zeros. */
export interface PaddingFrame {
  type: 'padding';
  /** Number of zero bytes after the length field. */
  length: number;
}

/**
 * Bytes of a reliable-ordered session. Encoded: type, flags byte (bit 0 = fin),
 * sessionId, offset, bytes data.
 */
export interface StreamFrame {
  type: 'stream';
  sessionId: number;
  /** Offset of data[0] in the session's byte stream (paper §III-B session sequence number). */
  offset: number;
  /** The stream ends after this frame's last byte. */
  fin: boolean;
  data: Uint8Array;
}

/**
 * One message of a message session. Encoded: type, sessionId, messageNumber, bytes
 * data; with `sentAtMicros`, type DATAGRAM_STAMPED and sentAtMicros before data.
 */
export interface DatagramFrame {
  type: 'datagram';
  sessionId: number;
  /** Session-level message sequence number, used for ordering and deduplication. */
  messageNumber: number;
  /**
   * Unreliable-ordered: when the application handed the message over, on the sender's
   * clock, in microseconds since the session was created there. Every copy of a message
   * (duplicates, repairs) carries the same stamp; the receiver's playout deadline counts
   * from it (message-receiver.ts).
   */
  sentAtMicros?: number;
  data: Uint8Array;
}

/** Inclusive range of packet numbers. */
export interface AckRange {
  first: number;
  last: number;
}

/**
 * Acknowledges packets of one path; may travel on any path. Encoded like RFC 9000
 * §19.3: type, pathId, largest, ackDelay, rangeCount-1, firstRangeLength, then
 * (gap, rangeLength) pairs, where gap and length follow RFC 9000 §19.3.1.
 */
export interface AckFrame {
  type: 'ack';
  pathId: number;
  /** Delay between receiving `ranges[0].last` and sending this ACK, in microseconds. */
  ackDelayMicros: number;
  /** Non-overlapping ranges in descending order; ranges[0].last is the largest acknowledged. */
  ranges: AckRange[];
}

/**
 * The opener's sliders and tolerances (DESIGN §3, combiner.ts), so that the far side's
 * scheduler, which sends the other direction, follows the same rule. Each field is
 * optional; an absent one means the default. Encoded: a presence byte (bit 0
 * lossVsThroughput, 1 latencyVsThroughput, 2 epsilonLatency, 3 epsilonJitter, 4
 * epsilonLoss; other bits 0), then each present value as a varint.
 */
export interface OpenPolicy {
  /** Loss↔throughput slider in millionths (0..1,000,000). */
  lossVsThroughputPpm?: number;
  /** Latency↔throughput slider in millionths (0..1,000,000). */
  latencyVsThroughputPpm?: number;
  /** Tolerance ε on latency, microseconds (> 0). */
  epsilonLatencyMicros?: number;
  /** Tolerance ε on jitter, microseconds (> 0). */
  epsilonJitterMicros?: number;
  /** Tolerance ε on loss, parts per million (> 0). */
  epsilonLossPpm?: number;
}

/** Largest slider value on the wire (1.0). */
export const SLIDER_SCALE = 1_000_000;

/**
 * Opens a session. Encoded: type, sessionId, semantics (index in SEMANTICS), priority
 * count and each objective's index in OBJECTIVES, string target, deadlineMs; with
 * `policy`, type OPEN_POLICY and the policy (OpenPolicy) after deadlineMs. Frames are
 * not length-prefixed, so the trailing fields are announced by the type byte; an OPEN
 * without them is the old form and still decodes.
 */
export interface OpenFrame {
  type: 'open';
  sessionId: number;
  semantics: Semantics;
  /** Objectives in the app's static priority order, most important first. */
  priorities: Objective[];
  /** Where the far end should forward the session ("host:port"), or "" for the peer itself. */
  target: string;
  /**
   * Playout deadline of an unreliable-ordered session in milliseconds: how long the
   * receiver holds a message behind a gap before it skips the gap (0: none).
   */
  deadlineMs: number;
  /** The opener's sliders and tolerances; absent in the old form (defaults apply). */
  policy?: OpenPolicy;
}

/**
 * The app's rule for an open session changed (the user moved a slider, reordered the
 * priorities): the peer's scheduler for the session takes it from its next packet, so
 * a rule steers both directions, as OPEN's did. Encoded: type, sessionId, sequence,
 * priority count and each objective's index in OBJECTIVES, then the policy as
 * OPEN_POLICY carries it (presence byte and values). Either side may send it; the
 * receiver applies one whose sequence is above the last it applied (a retransmission
 * of an older one can arrive after a newer one on another path).
 */
export interface PolicyFrame {
  type: 'policy';
  sessionId: number;
  /** 1 for the first change after OPEN, one more for each later change. */
  sequence: number;
  priorities: Objective[];
  policy: OpenPolicy;
}

/** Ends a session gracefully once all its data is delivered. Encoded: type, sessionId, code, string reason. */
export interface CloseFrame {
  type: 'close';
  sessionId: number;
  code: number;
  reason: string;
}

/** Aborts a session at once. Encoded: type, sessionId, code, string reason. */
export interface ResetFrame {
  type: 'reset';
  sessionId: number;
  code: number;
  reason: string;
}

/** Measures a path and keeps it alive. Encoded: type, probeId, sentAtMicros. */
export interface ProbeFrame {
  type: 'probe';
  probeId: number;
  /** Sender's clock when sent, echoed back for RTT measurement. */
  sentAtMicros: number;
}

/** Answers a PROBE. Encoded: type, probeId, sentAtMicros (echoed), packetSize. */
export interface ProbeAckFrame {
  type: 'probe_ack';
  probeId: number;
  sentAtMicros: number;
  /** Size of the packet that carried the PROBE, to confirm a path MTU. */
  packetSize: number;
}

/** Tells the peer how a path should be used. Encoded: type, pathId, state index, sequence. */
export interface PathStatusFrame {
  type: 'path_status';
  pathId: number;
  state: PathState;
  /** Increases with each PATH_STATUS for the same path; older ones are ignored. */
  sequence: number;
}

/**
 * Application-reported quality (paper §III-C). Encoded: type, sessionId, a presence
 * byte (bit 0 latency, 1 jitter, 2 loss, 3 throughput), then each present value.
 */
export interface FeedbackFrame {
  type: 'feedback';
  sessionId: number;
  latencyMicros?: number;
  jitterMicros?: number;
  /** Loss in parts per million. */
  lossPpm?: number;
  throughputBps?: number;
}

/** Session receive window: the sender may send up to this stream offset. Encoded: type, sessionId, maxOffset. */
export interface MaxDataFrame {
  type: 'max_data';
  sessionId: number;
  maxOffset: number;
}

/**
 * First message from client to server on the TLS control connection. Encoded: type,
 * version, bytes keyId, raw proof (MAC_LENGTH), list of string addresses, list of
 * transport indices (TRANSPORT_KINDS).
 */
export interface HelloFrame {
  type: 'hello';
  version: number;
  /** Which of the server's client keys signs the proof. */
  keyId: Uint8Array;
  /** HMAC-SHA256(client key, TLS exporter value): proves the key without sending it. */
  proof: Uint8Array;
  /** The client's m interface addresses. */
  addresses: string[];
  transports: TransportKind[];
}

/**
 * Server's answer to HELLO. Encoded: type, version, raw associationId
 * (ASSOCIATION_ID_LENGTH), list of string addresses, udpPort, tcpPort, list of
 * transport indices.
 */
export interface HelloAckFrame {
  type: 'hello_ack';
  version: number;
  associationId: Uint8Array;
  /** The server's n addresses. */
  addresses: string[];
  udpPort: number;
  tcpPort: number;
  transports: TransportKind[];
}

/**
 * First frame on a new path. Encoded: type, raw associationId, pathId, transport
 * index, raw mac (MAC_LENGTH) = HMAC-SHA256(join key, associationId ‖ pathId as u32 BE ‖ transport byte).
 */
export interface JoinFrame {
  type: 'join';
  associationId: Uint8Array;
  pathId: number;
  transport: TransportKind;
  mac: Uint8Array;
}

/** Accepts a JOIN. Encoded: type, pathId, maxPacketSize (largest packet the server will accept). */
export interface JoinAckFrame {
  type: 'join_ack';
  pathId: number;
  maxPacketSize: number;
}

/** Closes the association or control connection with a reason. Encoded: type, code, string reason. */
export interface ErrorFrame {
  type: 'error';
  /** BraidError.wireCode. */
  code: number;
  reason: string;
}

export type Frame =
  | PaddingFrame
  | StreamFrame
  | DatagramFrame
  | AckFrame
  | OpenFrame
  | PolicyFrame
  | CloseFrame
  | ResetFrame
  | ProbeFrame
  | ProbeAckFrame
  | PathStatusFrame
  | FeedbackFrame
  | MaxDataFrame
  | HelloFrame
  | HelloAckFrame
  | JoinFrame
  | JoinAckFrame
  | ErrorFrame;

export type FrameOf<T extends Frame['type']> = Extract<Frame, { type: T }>;

/** Frames that ask the receiver to acknowledge the packet that carries them (RFC 9002 §2). */
export function isAckEliciting(frame: Frame): boolean {
  return frame.type !== 'ack' && frame.type !== 'padding';
}
