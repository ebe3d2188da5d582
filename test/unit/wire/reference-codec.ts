/**
 * A second, deliberately plain implementation of the encoding in core/wire/frame.ts,
 * for differential tests: bytes are built in number arrays, varints go through BigInt,
 * UTF-8 validity is checked by re-encoding, and nothing is shared with core/wire except
 * the frame types and constants. Slow on purpose; never used outside tests.
 */
import {
  ASSOCIATION_ID_LENGTH,
  MAC_LENGTH,
  MAX_LIST_LENGTH,
  MAX_STRING_LENGTH,
  OBJECTIVES,
  PATH_STATES,
  SEMANTICS,
  TRANSPORT_KINDS,
  type AckRange,
  type FeedbackFrame,
  type Frame,
  type Objective,
  type OpenPolicy,
  type TransportKind,
} from '../../../core/wire/frame.js';

const TYPE_CODES: Record<Frame['type'], number> = {
  padding: 0x00,
  stream: 0x01,
  datagram: 0x02,
  ack: 0x03,
  open: 0x04,
  close: 0x05,
  reset: 0x06,
  probe: 0x07,
  probe_ack: 0x08,
  path_status: 0x09,
  feedback: 0x0a,
  max_data: 0x0b,
  hello: 0x10,
  hello_ack: 0x11,
  join: 0x12,
  join_ack: 0x13,
  error: 0x14,
  policy: 0x17,
};

// ---------------------------------------------------------------- encoding

function varint(out: number[], value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`bad varint ${value}`);
  const v = BigInt(value);
  let length: number;
  if (v < 64n) length = 1;
  else if (v < 16384n) length = 2;
  else if (v < 1073741824n) length = 4;
  else length = 8;
  const prefix = BigInt({ 1: 0, 2: 1, 4: 2, 8: 3 }[length]!);
  const all = (prefix << BigInt(length * 8 - 2)) | v;
  for (let i = length - 1; i >= 0; i--) out.push(Number((all >> BigInt(i * 8)) & 0xffn));
}

function bytes(out: number[], data: Uint8Array): void {
  varint(out, data.length);
  for (const b of data) out.push(b);
}

function raw(out: number[], data: Uint8Array, length: number): void {
  if (data.length !== length) throw new Error('bad fixed length');
  for (const b of data) out.push(b);
}

function string(out: number[], s: string): void {
  const encoded = Buffer.from(s, 'utf8');
  if (encoded.length > MAX_STRING_LENGTH) throw new Error('string too long');
  if (encoded.toString('utf8') !== s) throw new Error('string is not well formed');
  bytes(out, encoded);
}

function list<T>(out: number[], items: readonly T[], each: (item: T) => void): void {
  if (items.length > MAX_LIST_LENGTH) throw new Error('list too long');
  varint(out, items.length);
  items.forEach(each);
}

function index<T>(values: readonly T[], value: T): number {
  const i = values.indexOf(value);
  if (i < 0) throw new Error(`unknown value ${String(value)}`);
  return i;
}

/**
 * OPEN_POLICY's and POLICY's fields in presence-bit order, written out here from
 * frame.ts's description rather than taken from the encoder: the reference must not
 * share the code it checks.
 */
const POLICY_NAMES = [
  'lossVsThroughputPpm',
  'latencyVsThroughputPpm',
  'epsilonLatencyMicros',
  'epsilonJitterMicros',
  'epsilonLossPpm',
] as const;

function policyFields(out: number[], p: OpenPolicy): void {
  const values = POLICY_NAMES.map((name) => p[name]);
  let presence = 0;
  values.forEach((v, i) => {
    if (v !== undefined) presence |= 1 << i;
  });
  out.push(presence);
  for (const v of values) if (v !== undefined) varint(out, v);
}

export function referenceEncode(frames: readonly Frame[]): number[] {
  const out: number[] = [];
  for (const frame of frames) {
    // The optional trailing fields are announced by their own type byte (frame.ts).
    if (frame.type === 'datagram' && frame.sentAtMicros !== undefined) out.push(0x15);
    else if (frame.type === 'open' && frame.policy !== undefined) out.push(0x16);
    else out.push(TYPE_CODES[frame.type]);
    switch (frame.type) {
      case 'padding':
        varint(out, frame.length);
        for (let i = 0; i < frame.length; i++) out.push(0);
        break;
      case 'stream':
        out.push(frame.fin ? 1 : 0);
        varint(out, frame.sessionId);
        varint(out, frame.offset);
        bytes(out, frame.data);
        break;
      case 'datagram':
        varint(out, frame.sessionId);
        varint(out, frame.messageNumber);
        if (frame.sentAtMicros !== undefined) varint(out, frame.sentAtMicros);
        bytes(out, frame.data);
        break;
      case 'ack': {
        const r = frame.ranges;
        if (r.length === 0 || r.length > MAX_LIST_LENGTH) throw new Error('bad range count');
        varint(out, frame.pathId);
        varint(out, r[0]!.last);
        varint(out, frame.ackDelayMicros);
        varint(out, r.length - 1);
        varint(out, r[0]!.last - r[0]!.first);
        for (let i = 1; i < r.length; i++) {
          varint(out, r[i - 1]!.first - r[i]!.last - 2);
          varint(out, r[i]!.last - r[i]!.first);
        }
        break;
      }
      case 'open':
        varint(out, frame.sessionId);
        varint(out, index(SEMANTICS, frame.semantics));
        list(out, frame.priorities, (o) => varint(out, index(OBJECTIVES, o)));
        string(out, frame.target);
        varint(out, frame.deadlineMs);
        if (frame.policy !== undefined) policyFields(out, frame.policy);
        break;
      case 'policy':
        varint(out, frame.sessionId);
        varint(out, frame.sequence);
        list(out, frame.priorities, (o) => varint(out, index(OBJECTIVES, o)));
        policyFields(out, frame.policy);
        break;
      case 'close':
      case 'reset':
        varint(out, frame.sessionId);
        varint(out, frame.code);
        string(out, frame.reason);
        break;
      case 'probe':
        varint(out, frame.probeId);
        varint(out, frame.sentAtMicros);
        break;
      case 'probe_ack':
        varint(out, frame.probeId);
        varint(out, frame.sentAtMicros);
        varint(out, frame.packetSize);
        break;
      case 'path_status':
        varint(out, frame.pathId);
        varint(out, index(PATH_STATES, frame.state));
        varint(out, frame.sequence);
        break;
      case 'feedback': {
        varint(out, frame.sessionId);
        let presence = 0;
        if (frame.latencyMicros !== undefined) presence += 1;
        if (frame.jitterMicros !== undefined) presence += 2;
        if (frame.lossPpm !== undefined) presence += 4;
        if (frame.throughputBps !== undefined) presence += 8;
        out.push(presence);
        if (frame.latencyMicros !== undefined) varint(out, frame.latencyMicros);
        if (frame.jitterMicros !== undefined) varint(out, frame.jitterMicros);
        if (frame.lossPpm !== undefined) varint(out, frame.lossPpm);
        if (frame.throughputBps !== undefined) varint(out, frame.throughputBps);
        break;
      }
      case 'max_data':
        varint(out, frame.sessionId);
        varint(out, frame.maxOffset);
        break;
      case 'hello':
        varint(out, frame.version);
        bytes(out, frame.keyId);
        raw(out, frame.proof, MAC_LENGTH);
        list(out, frame.addresses, (a) => string(out, a));
        list(out, frame.transports, (t) => varint(out, index(TRANSPORT_KINDS, t)));
        break;
      case 'hello_ack':
        varint(out, frame.version);
        raw(out, frame.associationId, ASSOCIATION_ID_LENGTH);
        list(out, frame.addresses, (a) => string(out, a));
        varint(out, frame.udpPort);
        varint(out, frame.tcpPort);
        list(out, frame.transports, (t) => varint(out, index(TRANSPORT_KINDS, t)));
        break;
      case 'join':
        raw(out, frame.associationId, ASSOCIATION_ID_LENGTH);
        varint(out, frame.pathId);
        varint(out, index(TRANSPORT_KINDS, frame.transport));
        raw(out, frame.mac, MAC_LENGTH);
        break;
      case 'join_ack':
        varint(out, frame.pathId);
        varint(out, frame.maxPacketSize);
        break;
      case 'error':
        varint(out, frame.code);
        string(out, frame.reason);
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------- decoding

/** Thrown inside the reference decoder; `referenceDecode` turns it into a result. */
class Reject extends Error {}

class Input {
  pos = 0;
  constructor(readonly data: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.data.length) throw new Reject('truncated');
    return this.data[this.pos++]!;
  }

  take(n: number): Uint8Array {
    if (this.pos + n > this.data.length) throw new Reject('truncated');
    const out = this.data.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  varint(): number {
    const first = this.byte();
    const length = [1, 2, 4, 8][first >> 6]!;
    let v = BigInt(first & 0x3f);
    for (let i = 1; i < length; i++) v = (v << 8n) | BigInt(this.byte());
    const minimum = { 1: 0n, 2: 64n, 4: 16384n, 8: 1073741824n }[length]!;
    if (v < minimum) throw new Reject('non-minimal varint');
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Reject('varint above 2^53-1');
    return Number(v);
  }

  bytes(): Uint8Array {
    return this.take(this.varint());
  }

  string(): string {
    const n = this.varint();
    if (n > MAX_STRING_LENGTH) throw new Reject('string too long');
    const encoded = Buffer.from(this.take(n));
    const s = encoded.toString('utf8');
    // Invalid UTF-8 turns into U+FFFD, which does not re-encode to the same bytes.
    if (!Buffer.from(s, 'utf8').equals(encoded)) throw new Reject('not UTF-8');
    return s;
  }

  count(): number {
    const n = this.varint();
    if (n > MAX_LIST_LENGTH) throw new Reject('list too long');
    return n;
  }

  pick<T>(values: readonly T[]): T {
    const i = this.varint();
    if (i >= values.length) throw new Reject('unknown enum value');
    return values[i]!;
  }
}

function readPolicyFields(input: Input): OpenPolicy {
  const presence = input.byte();
  if (presence >= 0x20) throw new Reject('reserved policy bits');
  const policy: OpenPolicy = {};
  POLICY_NAMES.forEach((name, i) => {
    if ((presence & (1 << i)) === 0) return;
    const v = input.varint();
    if (i < 2 && v > 1_000_000) throw new Reject('slider above 1');
    if (i >= 2 && v === 0) throw new Reject('zero tolerance');
    policy[name] = v;
  });
  return policy;
}

function readPriorities(input: Input): Objective[] {
  const priorities: Objective[] = [];
  for (let n = input.count(), i = 0; i < n; i++) priorities.push(input.pick(OBJECTIVES));
  return priorities;
}

function decodeOne(input: Input): Frame {
  const type = input.byte();
  switch (type) {
    case 0x00: {
      const length = input.varint();
      const zeros = input.take(length);
      if (zeros.some((b) => b !== 0)) throw new Reject('padding not zero');
      return { type: 'padding', length };
    }
    case 0x01: {
      const flags = input.byte();
      if (flags !== 0 && flags !== 1) throw new Reject('bad flags');
      const sessionId = input.varint();
      const offset = input.varint();
      return { type: 'stream', sessionId, offset, fin: flags === 1, data: input.bytes() };
    }
    case 0x02: {
      const sessionId = input.varint();
      const messageNumber = input.varint();
      return { type: 'datagram', sessionId, messageNumber, data: input.bytes() };
    }
    case 0x15: {
      const sessionId = input.varint();
      const messageNumber = input.varint();
      const sentAtMicros = input.varint();
      return { type: 'datagram', sessionId, messageNumber, sentAtMicros, data: input.bytes() };
    }
    case 0x03: {
      const pathId = input.varint();
      const largest = input.varint();
      const ackDelayMicros = input.varint();
      const count = input.varint() + 1;
      if (count > MAX_LIST_LENGTH) throw new Reject('too many ranges');
      const firstLength = input.varint();
      if (firstLength > largest) throw new Reject('range below 0');
      const ranges: AckRange[] = [{ first: largest - firstLength, last: largest }];
      for (let i = 1; i < count; i++) {
        const gap = input.varint();
        const length = input.varint();
        const last = ranges[i - 1]!.first - gap - 2;
        if (last < 0 || last - length < 0) throw new Reject('range below 0');
        ranges.push({ first: last - length, last });
      }
      return { type: 'ack', pathId, ackDelayMicros, ranges };
    }
    case 0x04:
    case 0x16: {
      const sessionId = input.varint();
      const semantics = input.pick(SEMANTICS);
      const priorities = readPriorities(input);
      const target = input.string();
      const deadlineMs = input.varint();
      if (type === 0x04)
        return { type: 'open', sessionId, semantics, priorities, target, deadlineMs };
      const policy = readPolicyFields(input);
      return { type: 'open', sessionId, semantics, priorities, target, deadlineMs, policy };
    }
    case 0x17: {
      const sessionId = input.varint();
      const sequence = input.varint();
      const priorities = readPriorities(input);
      return { type: 'policy', sessionId, sequence, priorities, policy: readPolicyFields(input) };
    }
    case 0x05:
    case 0x06: {
      const sessionId = input.varint();
      const code = input.varint();
      const reason = input.string();
      return { type: type === 0x05 ? 'close' : 'reset', sessionId, code, reason };
    }
    case 0x07: {
      const probeId = input.varint();
      return { type: 'probe', probeId, sentAtMicros: input.varint() };
    }
    case 0x08: {
      const probeId = input.varint();
      const sentAtMicros = input.varint();
      return { type: 'probe_ack', probeId, sentAtMicros, packetSize: input.varint() };
    }
    case 0x09: {
      const pathId = input.varint();
      const state = input.pick(PATH_STATES);
      return { type: 'path_status', pathId, state, sequence: input.varint() };
    }
    case 0x0a: {
      const frame: FeedbackFrame = { type: 'feedback', sessionId: input.varint() };
      const presence = input.byte();
      if (presence > 15) throw new Reject('reserved presence bits');
      if (presence & 1) frame.latencyMicros = input.varint();
      if (presence & 2) frame.jitterMicros = input.varint();
      if (presence & 4) frame.lossPpm = input.varint();
      if (presence & 8) frame.throughputBps = input.varint();
      return frame;
    }
    case 0x0b: {
      const sessionId = input.varint();
      return { type: 'max_data', sessionId, maxOffset: input.varint() };
    }
    case 0x10: {
      const version = input.varint();
      const keyId = input.bytes();
      const proof = input.take(MAC_LENGTH);
      const addresses = [];
      for (let n = input.count(), i = 0; i < n; i++) addresses.push(input.string());
      const transports: TransportKind[] = [];
      for (let n = input.count(), i = 0; i < n; i++) transports.push(input.pick(TRANSPORT_KINDS));
      return { type: 'hello', version, keyId, proof, addresses, transports };
    }
    case 0x11: {
      const version = input.varint();
      const associationId = input.take(ASSOCIATION_ID_LENGTH);
      const addresses = [];
      for (let n = input.count(), i = 0; i < n; i++) addresses.push(input.string());
      const udpPort = input.varint();
      const tcpPort = input.varint();
      const transports: TransportKind[] = [];
      for (let n = input.count(), i = 0; i < n; i++) transports.push(input.pick(TRANSPORT_KINDS));
      return { type: 'hello_ack', version, associationId, addresses, udpPort, tcpPort, transports };
    }
    case 0x12: {
      const associationId = input.take(ASSOCIATION_ID_LENGTH);
      const pathId = input.varint();
      const transport = input.pick(TRANSPORT_KINDS);
      return { type: 'join', associationId, pathId, transport, mac: input.take(MAC_LENGTH) };
    }
    case 0x13: {
      const pathId = input.varint();
      return { type: 'join_ack', pathId, maxPacketSize: input.varint() };
    }
    case 0x14: {
      const code = input.varint();
      return { type: 'error', code, reason: input.string() };
    }
    default:
      throw new Reject('unknown frame type');
  }
}

/** Decodes a whole payload, or says why not (the reason is for humans only). */
export function referenceDecode(
  data: Uint8Array,
): { ok: true; frames: Frame[] } | { ok: false; reason: string } {
  const input = new Input(data);
  const frames: Frame[] = [];
  try {
    if (data.length === 0) throw new Reject('empty payload');
    while (input.pos < data.length) frames.push(decodeOne(input));
  } catch (err) {
    if (err instanceof Reject) return { ok: false, reason: err.message };
    throw err;
  }
  return { ok: true, frames };
}
