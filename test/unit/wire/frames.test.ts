import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MAX_LIST_LENGTH,
  OBJECTIVES,
  PATH_STATES,
  SEMANTICS,
  TRANSPORT_KINDS,
  type FeedbackFrame,
  type Frame,
} from '../../../core/wire/frame.js';
import {
  encodeFrame,
  encodeFrames,
  frameLength,
  STREAM_FRAME_OVERHEAD_MAX,
  streamFrameHeaderLength,
  writeStreamFrameHeader,
} from '../../../core/wire/encode.js';
import { decodeFrame, decodeFrames } from '../../../core/wire/decode.js';
import { varintLength } from '../../../core/wire/varint.js';
import {
  frameArb,
  FRAME_TYPES,
  frameArbOf,
  framesArb,
  plain,
  plainAll,
  thrownCode,
  VARINT_EDGES,
} from './arbitraries.js';

/** Encodes, checks the size, decodes from a Buffer and a plain Uint8Array, compares. */
function roundTrip(frame: Frame): Buffer {
  const length = frameLength(frame);
  const buf = Buffer.alloc(length + 3, 0xee);
  expect(encodeFrame(frame, buf, 3)).toBe(3 + length);
  const fromBuffer = decodeFrame(buf, 3);
  expect(fromBuffer.ok && fromBuffer.value.next).toBe(3 + length);
  if (fromBuffer.ok) expect(plain(fromBuffer.value.frame)).toEqual(plain(frame));
  const bytes = buf.subarray(3);
  const fromArray = decodeFrames(new Uint8Array(bytes));
  expect(fromArray.ok && plainAll(fromArray.value)).toEqual([plain(frame)]);
  return bytes;
}

const id8 = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const mac = new Uint8Array(32).fill(0xab);
const longAscii = 'a'.repeat(255);
const longUnicode = '\u{1F600}'.repeat(63) + 'abc'; // 255 UTF-8 bytes

/** Hand-picked frames with edge values for every type. */
const EDGE_FRAMES: Frame[] = [
  { type: 'padding', length: 0 },
  { type: 'padding', length: 1200 },
  ...VARINT_EDGES.map((v): Frame => ({
    type: 'stream',
    sessionId: v,
    offset: v,
    fin: false,
    data: new Uint8Array(),
  })),
  { type: 'stream', sessionId: 1, offset: 0, fin: true, data: new Uint8Array() },
  { type: 'stream', sessionId: 1, offset: 2 ** 53 - 1, fin: true, data: new Uint8Array(16384) },
  { type: 'datagram', sessionId: 0, messageNumber: 2 ** 53 - 1, data: Buffer.from('hello') },
  { type: 'datagram', sessionId: 64, messageNumber: 0, data: new Uint8Array() },
  { type: 'datagram', sessionId: 3, messageNumber: 9, sentAtMicros: 0, data: Buffer.from('x') },
  {
    type: 'datagram',
    sessionId: 3,
    messageNumber: 10,
    sentAtMicros: 2 ** 53 - 1,
    data: new Uint8Array(),
  },
  { type: 'ack', pathId: 0, ackDelayMicros: 0, ranges: [{ first: 0, last: 0 }] },
  {
    type: 'ack',
    pathId: 3,
    ackDelayMicros: 16384,
    ranges: [
      { first: 2 ** 53 - 10, last: 2 ** 53 - 1 },
      { first: 2 ** 30, last: 2 ** 30 + 5 },
      { first: 0, last: 16383 },
    ],
  },
  {
    type: 'ack',
    pathId: 1,
    ackDelayMicros: 25,
    // MAX_LIST_LENGTH ranges of one packet each, one packet apart.
    ranges: Array.from({ length: MAX_LIST_LENGTH }, (_, i) => {
      const pn = 2 * (MAX_LIST_LENGTH - 1 - i);
      return { first: pn, last: pn };
    }),
  },
  ...SEMANTICS.map((semantics): Frame => ({
    type: 'open',
    sessionId: 7,
    semantics,
    priorities: [...OBJECTIVES],
    target: 'example.org:443',
    deadlineMs: semantics === 'unreliable-ordered' ? 150 : 0,
  })),
  {
    type: 'open',
    sessionId: 0,
    semantics: 'reliable-ordered',
    priorities: [],
    target: '',
    deadlineMs: 0,
  },
  {
    type: 'open',
    sessionId: 1,
    semantics: 'unreliable-ordered',
    priorities: ['loss', 'loss'],
    target: '[2001:db8::1]:8443',
    deadlineMs: 2 ** 53 - 1,
  },
  {
    type: 'open',
    sessionId: 5,
    semantics: 'unreliable-ordered',
    priorities: ['latency', 'loss'],
    target: '',
    deadlineMs: 100,
    policy: {
      lossVsThroughputPpm: 1_000_000,
      latencyVsThroughputPpm: 0,
      epsilonLatencyMicros: 5000,
      epsilonJitterMicros: 2 ** 53 - 1,
      epsilonLossPpm: 5000,
    },
  },
  {
    type: 'open',
    sessionId: 6,
    semantics: 'reliable-ordered',
    priorities: [],
    target: 'a:1',
    deadlineMs: 0,
    policy: {},
  },
  {
    type: 'open',
    sessionId: 6,
    semantics: 'reliable-ordered',
    priorities: [],
    target: 'a:1',
    deadlineMs: 0,
    policy: { latencyVsThroughputPpm: 250_000 },
  },
  { type: 'policy', sessionId: 0, sequence: 1, priorities: [], policy: {} },
  {
    type: 'policy',
    sessionId: 2 ** 53 - 1,
    sequence: 2 ** 30,
    priorities: ['loss', 'jitter', 'latency', 'throughput'],
    policy: {
      lossVsThroughputPpm: 0,
      latencyVsThroughputPpm: 1_000_000,
      epsilonLatencyMicros: 1,
      epsilonJitterMicros: 2 ** 53 - 1,
      epsilonLossPpm: 64,
    },
  },
  { type: 'close', sessionId: 2 ** 30, code: 0, reason: longAscii },
  { type: 'reset', sessionId: 16383, code: 2 ** 53 - 1, reason: longUnicode },
  { type: 'reset', sessionId: 1, code: 31, reason: '\uFEFFbom is kept' },
  { type: 'probe', probeId: 63, sentAtMicros: 1_700_000_000_000_000 },
  { type: 'probe_ack', probeId: 64, sentAtMicros: 2 ** 53 - 1, packetSize: 1500 },
  ...PATH_STATES.map((state): Frame => ({
    type: 'path_status',
    pathId: 2,
    state,
    sequence: 2 ** 30 - 1,
  })),
  { type: 'max_data', sessionId: 9, maxOffset: 2 ** 53 - 1 },
  {
    type: 'hello',
    version: 1,
    keyId: new Uint8Array(),
    proof: mac,
    addresses: [],
    transports: [],
  },
  {
    type: 'hello',
    version: 1,
    keyId: Buffer.from('key-1'),
    proof: mac,
    addresses: [
      '192.168.1.20',
      'fe80::1ff:fe23:4567:890a%wlan0',
      '2001:db8:85a3::8a2e:370:7334',
      longAscii,
    ],
    transports: [...TRANSPORT_KINDS],
  },
  {
    type: 'hello_ack',
    version: 1,
    associationId: id8,
    addresses: Array.from({ length: MAX_LIST_LENGTH }, (_, i) => `2001:db8::${i.toString(16)}`),
    udpPort: 65535,
    tcpPort: 0,
    transports: ['tcp'],
  },
  ...TRANSPORT_KINDS.map((transport): Frame => ({
    type: 'join',
    associationId: id8,
    pathId: 2 ** 30,
    transport,
    mac,
  })),
  { type: 'join_ack', pathId: 0, maxPacketSize: 65527 },
  { type: 'error', code: 3, reason: '' },
  { type: 'error', code: 99, reason: longUnicode },
];

/** Every subset of FEEDBACK's optional fields. */
const FEEDBACK_SUBSETS: FeedbackFrame[] = Array.from({ length: 16 }, (_, bits) => {
  const frame: FeedbackFrame = { type: 'feedback', sessionId: bits * 1000 };
  if (bits & 1) frame.latencyMicros = 0;
  if (bits & 2) frame.jitterMicros = 16384;
  if (bits & 4) frame.lossPpm = 1_000_000;
  if (bits & 8) frame.throughputBps = 2 ** 53 - 1;
  return frame;
});

describe('frame round trip', () => {
  it('covers every frame type in the edge cases', () => {
    const covered = new Set([...EDGE_FRAMES, ...FEEDBACK_SUBSETS].map((f) => f.type));
    expect([...covered].sort()).toEqual([...FRAME_TYPES].sort());
  });

  it.each(EDGE_FRAMES.map((f, i) => [`${i} ${f.type}`, f] as const))(
    'decodes the encoding of edge frame %s to an equal frame',
    (_name, frame) => {
      roundTrip(frame);
    },
  );

  it('encodes FEEDBACK with every subset of optional fields and decodes only those present', () => {
    for (const frame of FEEDBACK_SUBSETS) {
      const bytes = roundTrip(frame);
      const decoded = decodeFrames(bytes);
      expect(decoded.ok && Object.keys(decoded.value[0]!).sort()).toEqual(
        Object.keys(frame).sort(),
      );
    }
  });

  it.each(FRAME_TYPES)('decodes any generated %s frame to an equal frame', (type) => {
    fc.assert(
      fc.property(frameArbOf(type), (frame) => {
        roundTrip(frame);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes a payload of several frames to the same frames in order', () => {
    fc.assert(
      fc.property(framesArb, (frames) => {
        const bytes = encodeFrames(frames);
        const decoded = decodeFrames(bytes);
        expect(decoded.ok && plainAll(decoded.value)).toEqual(plainAll(frames));
      }),
      { numRuns: 500 },
    );
  });

  it('pins the byte layout of a STREAM, an ACK and a JOIN frame', () => {
    const stream = encodeFrames([
      { type: 'stream', sessionId: 5, offset: 16384, fin: true, data: Buffer.from('hi') },
    ]);
    expect(stream.toString('hex')).toBe('01' + '01' + '05' + '80004000' + '02' + '6869');
    const ack = encodeFrames([
      {
        type: 'ack',
        pathId: 1,
        ackDelayMicros: 100,
        ranges: [
          { first: 8, last: 10 },
          { first: 2, last: 4 },
        ],
      },
    ]);
    // largest 10, delay 100, one extra range, first length 2, gap 8-4-2=2, length 2
    expect(ack.toString('hex')).toBe('03' + '01' + '0a' + '4064' + '01' + '02' + '02' + '02');
    const join = encodeFrames([
      { type: 'join', associationId: id8, pathId: 2, transport: 'tcp', mac },
    ]);
    expect(join.toString('hex')).toBe('12' + '0102030405060708' + '02' + '01' + 'ab'.repeat(32));
  });

  it('keeps decoded byte fields as views of the input, not copies', () => {
    const bytes = encodeFrames([
      { type: 'datagram', sessionId: 1, messageNumber: 2, data: Buffer.from('abc') },
    ]);
    const decoded = decodeFrames(bytes);
    expect(decoded.ok).toBe(true);
    const frame = decoded.ok ? decoded.value[0] : undefined;
    expect(frame?.type === 'datagram' && frame.data.buffer).toBe(bytes.buffer);
    bytes[bytes.length - 1] = 0x7a;
    expect(frame?.type === 'datagram' && Buffer.from(frame.data).toString()).toBe('abz');
  });
});

describe('STREAM fast path', () => {
  it('writes the same bytes as encodeFrame for any stream frame', () => {
    fc.assert(
      fc.property(frameArbOf('stream'), (frame) => {
        if (frame.type !== 'stream') return;
        const expected = encodeFrames([frame]);
        const buf = Buffer.alloc(expected.length);
        const pos = writeStreamFrameHeader(
          buf,
          0,
          frame.sessionId,
          frame.offset,
          frame.fin,
          frame.data.length,
        );
        buf.set(frame.data, pos);
        expect(buf.equals(expected)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('has a header no longer than STREAM_FRAME_OVERHEAD_MAX', () => {
    const max = 2 ** 53 - 1;
    // type, flags, and sessionId, offset and data length at their longest
    expect(STREAM_FRAME_OVERHEAD_MAX).toBe(2 + 3 * varintLength(max));
    const buf = Buffer.alloc(STREAM_FRAME_OVERHEAD_MAX);
    expect(writeStreamFrameHeader(buf, 0, max, max, true, 0)).toBe(2 + 8 + 8 + 1);
  });

  it('streamFrameHeaderLength bounds the header of every range below the offset and length it was given, and is exact at them', () => {
    const varint = fc.oneof(fc.constantFrom(...VARINT_EDGES), fc.nat({ max: 2 ** 40 }));
    fc.assert(
      fc.property(
        varint,
        varint,
        fc.nat({ max: 70_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (sessionId, maxOffset, maxLength, fo, fl) => {
          const reserved = streamFrameHeaderLength(sessionId, maxOffset, maxLength);
          expect(reserved).toBeLessThanOrEqual(STREAM_FRAME_OVERHEAD_MAX);
          const offset = Math.floor(fo * maxOffset);
          const length = Math.floor(fl * maxLength);
          const buf = Buffer.alloc(STREAM_FRAME_OVERHEAD_MAX + maxLength);
          expect(
            writeStreamFrameHeader(buf, 0, sessionId, offset, false, length),
          ).toBeLessThanOrEqual(reserved);
          expect(writeStreamFrameHeader(buf, 0, sessionId, maxOffset, false, maxLength)).toBe(
            reserved,
          );
        },
      ),
      { numRuns: 500 },
    );
    // A bulk stream's full packet: a 9-byte header where 27 bytes used to be kept free.
    expect(streamFrameHeaderLength(1, 50_000_000, 1400)).toBe(9);
  });

  it('refuses a header whose data would not fit the buffer', () => {
    expect(thrownCode(() => writeStreamFrameHeader(Buffer.alloc(10), 0, 1, 0, false, 8))).toBe(
      'BRAID_ERR_WIRE_TOO_LARGE',
    );
    expect(thrownCode(() => writeStreamFrameHeader(Buffer.alloc(10), 0, -1, 0, false, 1))).toBe(
      'BRAID_ERR_WIRE_BAD_VALUE',
    );
  });
});

describe('frame encoder refuses values it cannot encode', () => {
  const bad: [string, Frame][] = [
    ['a negative number', { type: 'probe', probeId: -1, sentAtMicros: 0 }],
    ['a fractional number', { type: 'max_data', sessionId: 1.5, maxOffset: 0 }],
    ['a number above 2^53-1', { type: 'join_ack', pathId: 2 ** 53, maxPacketSize: 1 }],
    ['NaN', { type: 'error', code: Number.NaN, reason: '' }],
    ['a string of 256 bytes', { type: 'error', code: 1, reason: 'a'.repeat(256) }],
    ['a string of 256 UTF-8 bytes', { type: 'error', code: 1, reason: 'é'.repeat(128) }],
    ['a lone surrogate', { type: 'close', sessionId: 1, code: 0, reason: 'x\uD800y' }],
    [
      'a short association id',
      { type: 'join', associationId: new Uint8Array(7), pathId: 1, transport: 'udp', mac },
    ],
    [
      'a long MAC',
      { type: 'join', associationId: id8, pathId: 1, transport: 'udp', mac: new Uint8Array(33) },
    ],
    [
      'a short proof',
      {
        type: 'hello',
        version: 1,
        keyId: new Uint8Array(),
        proof: new Uint8Array(31),
        addresses: [],
        transports: [],
      },
    ],
    [
      'an unknown transport',
      {
        type: 'join',
        associationId: id8,
        pathId: 1,
        transport: 'sctp' as 'udp',
        mac,
      },
    ],
    [
      'an unknown semantics',
      {
        type: 'open',
        sessionId: 1,
        semantics: 'best-effort' as 'reliable-ordered',
        priorities: [],
        target: '',
        deadlineMs: 0,
      },
    ],
    [
      'a slider above 1',
      {
        type: 'open',
        sessionId: 1,
        semantics: 'reliable-ordered',
        priorities: [],
        target: '',
        deadlineMs: 0,
        policy: { lossVsThroughputPpm: 1_000_001 },
      },
    ],
    [
      'a tolerance of 0',
      {
        type: 'open',
        sessionId: 1,
        semantics: 'reliable-ordered',
        priorities: [],
        target: '',
        deadlineMs: 0,
        policy: { epsilonLossPpm: 0 },
      },
    ],
    [
      'a fractional send stamp',
      {
        type: 'datagram',
        sessionId: 1,
        messageNumber: 1,
        sentAtMicros: 1.5,
        data: new Uint8Array(),
      },
    ],
    [
      'an unknown path state',
      { type: 'path_status', pathId: 1, state: 'x' as 'active', sequence: 0 },
    ],
    [
      'too many addresses',
      {
        type: 'hello_ack',
        version: 1,
        associationId: id8,
        addresses: Array.from({ length: MAX_LIST_LENGTH + 1 }, () => '::1'),
        udpPort: 1,
        tcpPort: 1,
        transports: [],
      },
    ],
    ['no ACK ranges', { type: 'ack', pathId: 1, ackDelayMicros: 0, ranges: [] }],
    [
      'an inverted ACK range',
      { type: 'ack', pathId: 1, ackDelayMicros: 0, ranges: [{ first: 5, last: 4 }] },
    ],
    [
      'adjacent ACK ranges (no gap between them)',
      {
        type: 'ack',
        pathId: 1,
        ackDelayMicros: 0,
        ranges: [
          { first: 5, last: 9 },
          { first: 1, last: 4 },
        ],
      },
    ],
    [
      'ascending ACK ranges',
      {
        type: 'ack',
        pathId: 1,
        ackDelayMicros: 0,
        ranges: [
          { first: 1, last: 2 },
          { first: 5, last: 9 },
        ],
      },
    ],
    [
      'too many ACK ranges',
      {
        type: 'ack',
        pathId: 1,
        ackDelayMicros: 0,
        ranges: Array.from({ length: MAX_LIST_LENGTH + 1 }, (_, i) => {
          const pn = 2 * (MAX_LIST_LENGTH - i);
          return { first: pn, last: pn };
        }),
      },
    ],
    ['a negative FEEDBACK value', { type: 'feedback', sessionId: 1, lossPpm: -5 }],
    ['a negative padding length', { type: 'padding', length: -1 }],
  ];

  it.each(bad)('throws BRAID_ERR_WIRE_BAD_VALUE for %s and writes nothing', (_name, frame) => {
    expect(thrownCode(() => frameLength(frame))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
    const buf = Buffer.alloc(4096, 0xee);
    expect(thrownCode(() => encodeFrame(frame, buf, 0))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
    expect(buf.every((b) => b === 0xee)).toBe(true);
    expect(thrownCode(() => encodeFrames([frame]))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
  });

  it('throws BRAID_ERR_WIRE_TOO_LARGE when the frame does not fit and writes nothing', () => {
    fc.assert(
      fc.property(frameArb, (frame) => {
        const length = frameLength(frame);
        const buf = Buffer.alloc(length + 1, 0xee);
        expect(thrownCode(() => encodeFrame(frame, buf, 2))).toBe('BRAID_ERR_WIRE_TOO_LARGE');
        expect(buf.every((b) => b === 0xee)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses an empty payload', () => {
    expect(thrownCode(() => encodeFrames([]))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
  });

  it('accepts a 255-byte string (the cap is inclusive)', () => {
    expect(frameLength({ type: 'error', code: 1, reason: 'a'.repeat(255) })).toBe(1 + 1 + 2 + 255);
  });
});

describe('optional trailing fields (DATAGRAM stamp, OPEN policy)', () => {
  it('an old-form OPEN (type 0x04, no policy) still decodes, followed by another frame', () => {
    // OPEN: session 7, reliable-unordered, priorities [loss], target "", deadline 0; then PROBE.
    const bytes = Buffer.from('04 07 01 01 03 00 00 07 01 02'.replace(/ /g, ''), 'hex');
    const r = decodeFrames(bytes);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toEqual([
      {
        type: 'open',
        sessionId: 7,
        semantics: 'reliable-unordered',
        priorities: ['loss'],
        target: '',
        deadlineMs: 0,
      },
      { type: 'probe', probeId: 1, sentAtMicros: 2 },
    ]);
    expect('policy' in r.value[0]!).toBe(false);
  });

  it('an OPEN with a policy uses type 0x16 and its fields follow deadlineMs', () => {
    const bytes = encodeFrames([
      {
        type: 'open',
        sessionId: 7,
        semantics: 'reliable-unordered',
        priorities: ['loss'],
        target: '',
        deadlineMs: 0,
        policy: { latencyVsThroughputPpm: 10, epsilonLossPpm: 20 },
      },
    ]);
    // presence 0x02 | 0x10, then 10 and 20.
    expect(bytes.toString('hex')).toBe('16070101030000' + '12' + '0a' + '14');
  });

  it('a POLICY uses type 0x17: session, sequence, priorities, then the policy as OPEN_POLICY has it', () => {
    const frame: Frame = {
      type: 'policy',
      sessionId: 7,
      sequence: 2,
      priorities: ['latency', 'loss'],
      policy: { lossVsThroughputPpm: 5, epsilonJitterMicros: 30 },
    };
    const bytes = encodeFrames([frame]);
    // OBJECTIVES: throughput 0, latency 1, jitter 2, loss 3; presence 0x01 | 0x08.
    expect(bytes.toString('hex')).toBe(
      '17' + '07' + '02' + '02' + '01' + '03' + '09' + '05' + '1e',
    );
    const r = decodeFrames(bytes);
    expect(r.ok && r.value).toEqual([frame]);
    // A slider above 1 is refused on both sides, as in OPEN_POLICY.
    const bad = { ...frame, policy: { latencyVsThroughputPpm: 1_000_001 } };
    expect(() => encodeFrames([bad])).toThrow(/latencyVsThroughputPpm/);
    const forged = Buffer.from('17070201' + '01' + '02' + '80' + '0f4241', 'hex');
    const f = decodeFrames(forged);
    expect(f.ok).toBe(false);
  });

  it('a stamped DATAGRAM uses type 0x15 and the stamp precedes the data', () => {
    const bytes = encodeFrames([
      {
        type: 'datagram',
        sessionId: 1,
        messageNumber: 2,
        sentAtMicros: 300,
        data: Buffer.from('z'),
      },
    ]);
    expect(bytes.toString('hex')).toBe('15' + '01' + '02' + '412c' + '01' + '7a');
    const r = decodeFrames(bytes);
    expect(r.ok && r.value[0]).toEqual({
      type: 'datagram',
      sessionId: 1,
      messageNumber: 2,
      sentAtMicros: 300,
      data: Buffer.from('z'),
    });
  });
});
