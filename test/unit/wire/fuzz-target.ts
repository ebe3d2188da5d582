/**
 * The decoder fuzz target shared by decode-total.test.ts (a fixed 100,000 inputs in
 * every test run) and fuzz.test.ts (BRAID_FUZZ_RUNS inputs, `npm run fuzz`): inputs are
 * random bytes and valid encodings damaged by bit flips, truncations, insertions,
 * deletions and overwrites with varint-prefix bytes that corrupt length fields.
 */
import fc from 'fast-check';
import { BraidError } from '../../../core/util/errors.js';
import { decodeFrame, decodeFrames } from '../../../core/wire/decode.js';
import { encodeFrame, encodeFrames, frameLength } from '../../../core/wire/encode.js';
import { ASSOCIATION_ID_LENGTH, FrameType } from '../../../core/wire/frame.js';
import { decodeHeader, headerLength, writeHeader } from '../../../core/wire/packet-header.js';
import { framesArb, varintArb } from './arbitraries.js';

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'set'; at: number; value: number };

// Bytes that turn a length or count into the largest value of each varint length, or
// into a varint prefix that swallows the bytes after it.
const LENGTH_BYTES = [0x00, 0x01, 0x3f, 0x40, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xff];

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip'), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('truncate'), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert'),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({ kind: fc.constant('delete'), at: fc.nat(), count: fc.integer({ min: 1, max: 9 }) }),
  fc.record({
    kind: fc.constant('set'),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(...LENGTH_BYTES), fc.nat({ max: 255 })),
  }),
);

function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = Buffer.from(input);
  for (const m of mutations) {
    const at = m.at % (bytes.length + 1);
    switch (m.kind) {
      case 'flip':
        if (at < bytes.length) bytes[at]! ^= 1 << m.bit;
        break;
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
        break;
      case 'set':
        if (at < bytes.length) bytes[at] = m.value;
        break;
    }
  }
  return bytes;
}

const mutationsArb = fc.array(mutationArb, { maxLength: 4 });

/** Valid payloads, some left intact, most damaged. */
export const mutatedPayloadArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(framesArb, mutationsArb)
  .map(([frames, mutations]) => mutate(encodeFrames(frames), mutations));

/** Whole packets: a valid header and payload, then damaged. */
const mutatedPacketArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.uint8Array({ minLength: ASSOCIATION_ID_LENGTH, maxLength: ASSOCIATION_ID_LENGTH }),
    varintArb,
    varintArb,
    framesArb,
    mutationsArb,
  )
  .map(([id, pathId, packetNumber, frames, mutations]) => {
    const payload = encodeFrames(frames);
    const packet = Buffer.alloc(headerLength(pathId, packetNumber) + payload.length);
    payload.copy(packet, writeHeader(packet, 0, id, pathId, packetNumber));
    return mutate(packet, mutations);
  });

const TYPE_BYTES = Object.values(FrameType);

/** Random bytes, half of them starting with a known frame type to get past the first check. */
const randomArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc
    .tuple(fc.constantFrom(...TYPE_BYTES), fc.uint8Array({ maxLength: 64 }))
    .map(([type, rest]) => Buffer.concat([Buffer.of(type), rest])),
);

/** Every kind of fuzz input; plain Uint8Arrays half the time, since decoders take both. */
export const fuzzInputArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.oneof(randomArb, mutatedPayloadArb, mutatedPacketArb), fc.boolean())
  .map(([bytes, plainArray]) => (plainArray ? new Uint8Array(bytes) : bytes));

function checkFailure(what: string, error: unknown): void {
  if (!(error instanceof BraidError) || !error.code.startsWith('BRAID_ERR_WIRE_')) {
    throw new Error(`${what} failed without a BRAID_ERR_WIRE_* error: ${String(error)}`);
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/** What `decodeFrames` and `decodeHeader` made of one input: 'ok' or the error code. */
export interface Outcome {
  frames: string;
  header: string;
}

/**
 * Runs every decoder on `input`. Throws when one throws, fails without a
 * BRAID_ERR_WIRE_* error, or succeeds on bytes that do not re-encode identically.
 */
export function checkDecoders(input: Uint8Array): Outcome {
  const all = decodeFrames(input);
  if (all.ok) {
    if (all.value.length === 0) throw new Error('decodeFrames returned no frames');
    if (!same(encodeFrames(all.value), input)) throw new Error('decodeFrames is not canonical');
  } else {
    checkFailure('decodeFrames', all.error);
  }

  const first = decodeFrame(input, 0);
  if (first.ok) {
    const { frame, next } = first.value;
    const buf = Buffer.alloc(frameLength(frame));
    encodeFrame(frame, buf, 0);
    if (!same(buf, input.subarray(0, next))) throw new Error('decodeFrame is not canonical');
  } else {
    checkFailure('decodeFrame', first.error);
    if (all.ok) throw new Error('decodeFrames accepted what decodeFrame rejected');
  }

  const header = decodeHeader(input);
  if (header.ok) {
    const { header: h, length } = header.value;
    const buf = Buffer.alloc(headerLength(h.pathId, h.packetNumber));
    writeHeader(buf, 0, h.associationId, h.pathId, h.packetNumber);
    if (!same(buf, input.subarray(0, length))) throw new Error('decodeHeader is not canonical');
  } else {
    checkFailure('decodeHeader', header.error);
  }
  return {
    frames: all.ok ? 'ok' : all.error.code,
    header: header.ok ? 'ok' : header.error.code,
  };
}

/** Counts of outcomes, to show the inputs reach both acceptance and every error path. */
export class OutcomeTally {
  readonly frames = new Map<string, number>();
  readonly header = new Map<string, number>();
  runs = 0;

  add(outcome: Outcome): void {
    this.runs++;
    this.frames.set(outcome.frames, (this.frames.get(outcome.frames) ?? 0) + 1);
    this.header.set(outcome.header, (this.header.get(outcome.header) ?? 0) + 1);
  }

  summary(): string {
    const show = (m: Map<string, number>): string =>
      [...m].map(([k, v]) => `${k.replace('BRAID_ERR_WIRE_', '')} ${v}`).join(', ');
    return `${this.runs} inputs; frames: ${show(this.frames)}; header: ${show(this.header)}`;
  }
}
