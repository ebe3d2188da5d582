/** fast-check arbitraries for every frame type, and helpers to compare decoded frames. */
import fc from 'fast-check';
import {
  ASSOCIATION_ID_LENGTH,
  MAC_LENGTH,
  MAX_LIST_LENGTH,
  OBJECTIVES,
  PATH_STATES,
  SEMANTICS,
  TRANSPORT_KINDS,
  type AckRange,
  type Frame,
} from '../../../core/wire/frame.js';

/** Values at each varint length boundary (RFC 9000 §16) and the 2^53-1 limit. */
export const VARINT_EDGES = [
  0,
  1,
  63,
  64,
  16383,
  16384,
  2 ** 30 - 1,
  2 ** 30,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
];

/** Any encodable integer, biased towards the length boundaries. */
export const varintArb: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(...VARINT_EDGES),
  fc.nat({ max: 63 }),
  fc.nat({ max: 16383 }),
  fc.nat({ max: 2 ** 30 - 1 }),
  fc.maxSafeNat(),
);

const smallNat = fc.oneof(fc.nat({ max: 70 }), fc.nat({ max: 20000 }));

const bytesArb = fc
  .uint8Array({ maxLength: 80 })
  .map((a) => Buffer.from(a.buffer, a.byteOffset, a.length));
const fixedBytes = (n: number): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: n, maxLength: n });

/** Well-formed strings of at most 255 UTF-8 bytes, including the 255-byte edge. */
export const wireStringArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 63 }),
  fc.constantFrom('', 'a'.repeat(255), 'é'.repeat(127) + 'x', '\u{1F600}'.repeat(63) + 'abc'),
  fc.ipV6(),
  fc.ipV4(),
);

const addressArb = fc.oneof(fc.ipV4(), fc.ipV6(), wireStringArb);

/** Valid ACK ranges: descending, each at least one packet below the previous with a gap. */
export const ackRangesArb: fc.Arbitrary<AckRange[]> = fc
  .tuple(varintArb, smallNat, fc.array(fc.tuple(smallNat, smallNat), { maxLength: 70 }))
  .map(([largest, firstLength, rest]) => {
    const ranges: AckRange[] = [{ first: Math.max(0, largest - firstLength), last: largest }];
    for (const [gap, length] of rest) {
      if (ranges.length === MAX_LIST_LENGTH) break;
      const last = ranges[ranges.length - 1]!.first - gap - 2;
      if (last < 0) break;
      ranges.push({ first: Math.max(0, last - length), last });
    }
    return ranges;
  });

const sliderArb = fc.oneof(fc.constantFrom(0, 1_000_000), fc.integer({ min: 0, max: 1_000_000 }));
const positiveArb = varintArb.filter((v) => v > 0);
const openPolicyArb = fc.record(
  {
    lossVsThroughputPpm: sliderArb,
    latencyVsThroughputPpm: sliderArb,
    epsilonLatencyMicros: positiveArb,
    epsilonJitterMicros: positiveArb,
    epsilonLossPpm: positiveArb,
  },
  { requiredKeys: [] },
);

const frameArbs: { [K in Frame['type']]: fc.Arbitrary<Extract<Frame, { type: K }>> } = {
  padding: fc.record({ type: fc.constant('padding'), length: fc.nat({ max: 300 }) }),
  stream: fc.record({
    type: fc.constant('stream'),
    sessionId: varintArb,
    offset: varintArb,
    fin: fc.boolean(),
    data: bytesArb,
  }),
  datagram: fc.record(
    {
      type: fc.constant('datagram'),
      sessionId: varintArb,
      messageNumber: varintArb,
      sentAtMicros: varintArb,
      data: bytesArb,
    },
    { requiredKeys: ['type', 'sessionId', 'messageNumber', 'data'] },
  ),
  ack: fc.record({
    type: fc.constant('ack'),
    pathId: varintArb,
    ackDelayMicros: varintArb,
    ranges: ackRangesArb,
  }),
  open: fc.record(
    {
      type: fc.constant('open'),
      sessionId: varintArb,
      semantics: fc.constantFrom(...SEMANTICS),
      priorities: fc.array(fc.constantFrom(...OBJECTIVES), { maxLength: 8 }),
      target: wireStringArb,
      deadlineMs: varintArb,
      policy: openPolicyArb,
    },
    { requiredKeys: ['type', 'sessionId', 'semantics', 'priorities', 'target', 'deadlineMs'] },
  ),
  policy: fc.record({
    type: fc.constant('policy'),
    sessionId: varintArb,
    sequence: varintArb,
    priorities: fc.array(fc.constantFrom(...OBJECTIVES), { maxLength: 8 }),
    policy: openPolicyArb,
  }),
  close: fc.record({
    type: fc.constant('close'),
    sessionId: varintArb,
    code: varintArb,
    reason: wireStringArb,
  }),
  reset: fc.record({
    type: fc.constant('reset'),
    sessionId: varintArb,
    code: varintArb,
    reason: wireStringArb,
  }),
  probe: fc.record({ type: fc.constant('probe'), probeId: varintArb, sentAtMicros: varintArb }),
  probe_ack: fc.record({
    type: fc.constant('probe_ack'),
    probeId: varintArb,
    sentAtMicros: varintArb,
    packetSize: varintArb,
  }),
  path_status: fc.record({
    type: fc.constant('path_status'),
    pathId: varintArb,
    state: fc.constantFrom(...PATH_STATES),
    sequence: varintArb,
  }),
  feedback: fc.record(
    {
      type: fc.constant('feedback'),
      sessionId: varintArb,
      latencyMicros: varintArb,
      jitterMicros: varintArb,
      lossPpm: varintArb,
      throughputBps: varintArb,
    },
    { requiredKeys: ['type', 'sessionId'] },
  ),
  max_data: fc.record({
    type: fc.constant('max_data'),
    sessionId: varintArb,
    maxOffset: varintArb,
  }),
  hello: fc.record({
    type: fc.constant('hello'),
    version: varintArb,
    keyId: bytesArb,
    proof: fixedBytes(MAC_LENGTH),
    addresses: fc.array(addressArb, { maxLength: 6 }),
    transports: fc.array(fc.constantFrom(...TRANSPORT_KINDS), { maxLength: 4 }),
  }),
  hello_ack: fc.record({
    type: fc.constant('hello_ack'),
    version: varintArb,
    associationId: fixedBytes(ASSOCIATION_ID_LENGTH),
    addresses: fc.array(addressArb, { maxLength: 6 }),
    udpPort: varintArb,
    tcpPort: varintArb,
    transports: fc.array(fc.constantFrom(...TRANSPORT_KINDS), { maxLength: 4 }),
  }),
  join: fc.record({
    type: fc.constant('join'),
    associationId: fixedBytes(ASSOCIATION_ID_LENGTH),
    pathId: varintArb,
    transport: fc.constantFrom(...TRANSPORT_KINDS),
    mac: fixedBytes(MAC_LENGTH),
  }),
  join_ack: fc.record({
    type: fc.constant('join_ack'),
    pathId: varintArb,
    maxPacketSize: varintArb,
  }),
  error: fc.record({ type: fc.constant('error'), code: varintArb, reason: wireStringArb }),
};

export const FRAME_TYPES = Object.keys(frameArbs) as Frame['type'][];

export function frameArbOf<K extends Frame['type']>(type: K): fc.Arbitrary<Frame> {
  return frameArbs[type];
}

/** Any frame, each type equally likely. */
export const frameArb: fc.Arbitrary<Frame> = fc.oneof(...FRAME_TYPES.map((t) => frameArbOf(t)));

/** A packet payload: one or more frames. */
export const framesArb: fc.Arbitrary<Frame[]> = fc.array(frameArb, { minLength: 1, maxLength: 5 });

/**
 * A frame as plain data, with byte fields as hex, so frames decoded into Buffer views
 * compare equal to frames built from Uint8Arrays.
 */
export function plain(frame: Frame): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(frame)) {
    if (value === undefined) continue;
    out[key] = value instanceof Uint8Array ? Buffer.from(value).toString('hex') : value;
  }
  return out;
}

export function plainAll(frames: readonly Frame[]): Record<string, unknown>[] {
  return frames.map(plain);
}

export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

/** The `code` of the error `fn` throws, or undefined when it returns. */
export function thrownCode(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code ?? err;
  }
  return undefined;
}
