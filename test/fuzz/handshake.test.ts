/**
 * Fuzzing the handshake messages: control records (HELLO, HELLO_ACK, ERROR, anything
 * else) through the record reader in random pieces, the single-frame rule and the
 * HELLO / HELLO_ACK checks both ends run; and JOIN packets through the steps of
 * Association.acceptJoin (header, AEAD under the path keys, frames, verifyJoin).
 * Inputs are valid messages damaged by mutations, and random bytes.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkHello,
  checkHelloAck,
  HandshakeRecordReader,
  singleFrame,
} from '../../core/handshake/control.js';
import { deriveAssociationSecrets } from '../../core/handshake/keys.js';
import { PacketProtection } from '../../core/transport/packet-protection.js';
import { BraidError } from '../../core/util/errors.js';
import { decodeFrames } from '../../core/wire/decode.js';
import { encodeFrames } from '../../core/wire/encode.js';
import { TRANSPORT_KINDS, WIRE_VERSION, type Frame } from '../../core/wire/frame.js';
import { decodeHeader, writeHeader } from '../../core/wire/packet-header.js';
import { frameArbOf } from '../unit/wire/arbitraries.js';
import { chunkingArb, chunks, damaged, fuzz, LIMITS, RUNS, TIME_LIMIT_MS } from './harness.js';

function expectBraidError(err: unknown): void {
  if (!(err instanceof BraidError) || !err.code.startsWith('BRAID_ERR_')) throw err;
}

const ipArb = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('127.0.0.1', '::1', 'not-an-ip', ''));
/** Messages a real peer sends, so that mutations land near the accepted set. */
const validHelloArb: fc.Arbitrary<Frame> = fc.record({
  type: fc.constant('hello' as const),
  version: fc.constantFrom(WIRE_VERSION, WIRE_VERSION + 1, 0),
  keyId: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  proof: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  addresses: fc.array(ipArb, { minLength: 0, maxLength: 5 }),
  transports: fc.array(fc.constantFrom(...TRANSPORT_KINDS), { maxLength: 3 }),
});
const validAckArb: fc.Arbitrary<Frame> = fc.record({
  type: fc.constant('hello_ack' as const),
  version: fc.constantFrom(WIRE_VERSION, 2),
  associationId: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  addresses: fc.array(ipArb, { minLength: 1, maxLength: 5 }),
  udpPort: fc.oneof(fc.nat({ max: 65535 }), fc.constant(70000)),
  tcpPort: fc.nat({ max: 65535 }),
  transports: fc.array(fc.constantFrom(...TRANSPORT_KINDS), { minLength: 1, maxLength: 3 }),
});
const recordArb = fc
  .array(
    fc.oneof(
      validHelloArb,
      validAckArb,
      frameArbOf('hello'),
      frameArbOf('hello_ack'),
      frameArbOf('error'),
      frameArbOf('join'),
    ),
    { minLength: 1, maxLength: 2 },
  )
  .map((frames) => {
    const body = encodeFrames(frames);
    const out = Buffer.alloc(4 + body.length);
    out.writeUInt32BE(body.length, 0);
    body.copy(out, 4);
    return new Uint8Array(out);
  });

function checkRecord(input: Buffer, sizes: number[]): string {
  const reader = new HandshakeRecordReader();
  let got: ReturnType<HandshakeRecordReader['push']> = undefined;
  for (const piece of chunks(input, sizes)) {
    got = reader.push(Buffer.from(piece));
    if (got !== undefined) break;
  }
  if (got === undefined) return 'incomplete';
  if (got instanceof BraidError) {
    expectBraidError(got);
    return 'record refused';
  }
  const frame = singleFrame(got.record);
  if (frame instanceof BraidError) {
    expectBraidError(frame);
    return 'frame refused';
  }
  if (frame.type === 'hello') {
    const err = checkHello(frame, 'fuzz');
    if (err !== undefined) {
      expectBraidError(err);
      return 'hello refused';
    }
    // What the check lets through is what the server relies on.
    expect(frame.version).toBe(WIRE_VERSION);
    expect(frame.addresses.length).toBeGreaterThan(0);
    for (const a of frame.addresses) expect(isIP(a)).not.toBe(0);
    return 'hello accepted';
  }
  if (frame.type === 'hello_ack') {
    const err = checkHelloAck(frame, 'fuzz');
    if (err !== undefined) {
      expectBraidError(err);
      return 'ack refused';
    }
    for (const a of frame.addresses) expect(isIP(a)).not.toBe(0);
    // The client derives keys next; that must not throw for an accepted ack.
    deriveAssociationSecrets(randomBytes(32), Buffer.from(frame.associationId));
    return 'ack accepted';
  }
  return `other: ${frame.type}`;
}

// One association's secrets, as both ends hold them after the handshake.
const associationId = randomBytes(8);
const secrets = deriveAssociationSecrets(randomBytes(32), associationId);
const MAX_PATH_ID = 0xffff_ffff;

const joinPacketArb = fc
  .record({
    pathId: fc.oneof(fc.nat({ max: 8 }), fc.constantFrom(MAX_PATH_ID, MAX_PATH_ID + 1, 2 ** 40)),
    pn: fc.oneof(fc.nat({ max: 4 }), fc.constant(2 ** 40)),
    genuine: fc.boolean(),
    transport: fc.constantFrom(...TRANSPORT_KINDS),
  })
  .map(({ pathId, pn, genuine, transport }) => {
    const keyPath = Math.min(pathId, MAX_PATH_ID);
    const frame: Frame = {
      type: 'join',
      associationId,
      pathId,
      transport,
      mac: genuine && pathId <= MAX_PATH_ID ? secrets.joinMac(pathId, transport) : randomBytes(32),
    };
    const body = encodeFrames([frame]);
    const buf = Buffer.alloc(32 + body.length);
    const len = writeHeader(buf, 0, associationId, pathId, pn);
    body.copy(buf, len);
    // The client seals with its send key; the server opens with its receive key.
    const keys = secrets.pathKeys(keyPath, 'client');
    return new Uint8Array(
      new PacketProtection(keys.send, keys.receive).seal(buf, len, body.length, pn),
    );
  });

/** acceptJoin's steps, with the path id check the relay needs (see path-id-crash.test.ts). */
function checkJoin(packet: Buffer): string {
  const h = decodeHeader(packet);
  if (!h.ok) {
    expectBraidError(h.error);
    return 'bad header';
  }
  const { header, length } = h.value;
  if (!associationId.equals(header.associationId)) return 'other association';
  if (header.pathId > MAX_PATH_ID) {
    // pathKeys refuses such ids with BRAID_ERR_USAGE: the caller must not ask.
    try {
      secrets.pathKeys(header.pathId, 'server');
      throw new Error(`pathKeys accepted path id ${header.pathId}`);
    } catch (err) {
      expectBraidError(err);
    }
    return 'path id out of range';
  }
  const keys = secrets.pathKeys(header.pathId, 'server');
  const plain = new PacketProtection(keys.send, keys.receive).open(
    packet,
    length,
    header.packetNumber,
  );
  if (plain instanceof BraidError) {
    expectBraidError(plain);
    return 'not authentic';
  }
  const frames = decodeFrames(plain);
  if (!frames.ok) return 'authentic, undecodable';
  const join = frames.value[0];
  if (join?.type !== 'join') return 'authentic, not a join';
  const verified = secrets.verifyJoin(join);
  if (verified) {
    expect(join.pathId).toBeLessThanOrEqual(MAX_PATH_ID);
    expect(Buffer.from(join.mac).equals(secrets.joinMac(join.pathId, join.transport))).toBe(true);
  }
  return verified && join.pathId === header.pathId ? 'join accepted' : 'join refused';
}

function tally(outcomes: Map<string, number>, o: string): void {
  outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
}

function expectBounded(report: ReturnType<typeof fuzz>): void {
  expect(report.slowestInputMs).toBeLessThan(LIMITS.slowestInputMs);
  expect(report.heapGrowthBytes).toBeLessThan(LIMITS.heapGrowthBytes);
  expect(report.maxArrayBufferRiseBytes).toBeLessThan(LIMITS.maxArrayBufferRiseBytes);
}

describe(`handshake message fuzzing (${RUNS} inputs per target)`, () => {
  it(
    'control records: the reader, the one-frame rule and the HELLO/HELLO_ACK checks never throw and accept only valid messages',
    () => {
      const outcomes = new Map<string, number>();
      const report = fuzz(
        'handshake records',
        fc.tuple(damaged(recordArb), chunkingArb),
        ([input, sizes]) => tally(outcomes, checkRecord(input, sizes)),
      );
      console.log(`  outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
      expectBounded(report);
      if (RUNS >= 1000) {
        expect(outcomes.get('hello accepted') ?? 0).toBeGreaterThan(0);
        expect(outcomes.get('ack accepted') ?? 0).toBeGreaterThan(0);
      }
    },
    TIME_LIMIT_MS + 30_000,
  );

  it(
    'JOIN packets: only a genuine JOIN for its own path verifies; nothing throws but pathKeys on an id it cannot have',
    () => {
      const outcomes = new Map<string, number>();
      const report = fuzz('join packets', damaged(joinPacketArb), (input) =>
        tally(outcomes, checkJoin(input)),
      );
      console.log(`  outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
      expectBounded(report);
      if (RUNS >= 1000) expect(outcomes.get('join accepted') ?? 0).toBeGreaterThan(0);
    },
    TIME_LIMIT_MS + 30_000,
  );

  it(
    'verifyJoin is total over any JOIN frame, including path ids up to 2^53',
    () => {
      const report = fuzz('verifyJoin', frameArbOf('join'), (frame) => {
        if (frame.type !== 'join') return;
        expect(secrets.verifyJoin({ ...frame, associationId })).toBe(false);
      });
      expectBounded(report);
    },
    TIME_LIMIT_MS + 30_000,
  );
});
