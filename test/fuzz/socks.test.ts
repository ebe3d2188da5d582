/**
 * Fuzzing the SOCKS5 parser (core/proxy/socks5-parser.ts), which reads whatever any
 * local program sends to 127.0.0.1:1080: pipelined greeting, RFC 1929 auth and
 * request, in random pieces, damaged; and the RFC 1928 §7 UDP header. `push` never
 * throws and holds at most MAX_HANDSHAKE_BYTES; errors are Socks5Error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_HANDSHAKE_BYTES,
  parseUdpDatagram,
  Socks5Error,
  Socks5Parser,
} from '../../core/proxy/socks5-parser.js';
import { encodeUdpDatagram } from '../../core/proxy/socks5-encode.js';
import { chunkingArb, chunks, damaged, fuzz, LIMITS, RUNS, TIME_LIMIT_MS } from './harness.js';

const short = (max: number): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: 0, maxLength: max });
const addressArb = fc.oneof(
  fc.ipV4().map((a) => Buffer.from([1, ...a.split('.').map(Number)])),
  short(16).map((b) =>
    Buffer.concat([Buffer.from([4]), Buffer.from(b), Buffer.alloc(16 - b.length)]),
  ),
  fc
    .domain()
    .map((d) =>
      Buffer.concat([Buffer.from([3, Math.min(d.length, 255)]), Buffer.from(d).subarray(0, 255)]),
    ),
);
const handshakeArb = fc
  .record({
    methods: fc.oneof(
      fc.constantFrom([0], [2], [0, 2], [2, 0]),
      fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 4 }),
    ),
    auth: fc.option(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }))),
    command: fc.constantFrom(1, 1, 3, 2, 9),
    address: addressArb,
    port: fc.nat({ max: 65535 }),
    early: short(32),
  })
  .map(({ methods, auth, command, address, port, early }) => {
    const parts: Buffer[] = [Buffer.from([5, methods.length, ...methods])];
    if (auth !== null) {
      const u = Buffer.from(auth[0]);
      const p = Buffer.from(auth[1]);
      parts.push(Buffer.from([1, u.length]), u, Buffer.from([p.length]), p);
    }
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16BE(port);
    parts.push(Buffer.from([5, command, 0]), address, portBytes, Buffer.from(early));
    return new Uint8Array(Buffer.concat(parts));
  });
const datagramArb = fc
  .record({
    host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
    port: fc.nat({ max: 65535 }),
    data: short(64),
  })
  .map(({ host, port, data }) => {
    try {
      return new Uint8Array(encodeUdpDatagram({ host, port }, Buffer.from(data)));
    } catch {
      return new Uint8Array(Buffer.from(data));
    }
  });

describe(`SOCKS5 parser fuzzing (${RUNS} inputs per target)`, () => {
  it(
    'push never throws, keeps at most MAX_HANDSHAKE_BYTES, and fails only with Socks5Error',
    () => {
      const phases = new Map<string, number>();
      const report = fuzz(
        'socks5 handshake',
        fc.tuple(damaged(handshakeArb), chunkingArb, fc.boolean()),
        ([input, sizes, requireAuth]) => {
          const parser = new Socks5Parser({ requireAuth });
          let fed = 0;
          for (const piece of chunks(input, sizes)) {
            fed += piece.length;
            const { error } = parser.push(piece);
            if (error !== undefined) {
              expect(error).toBeInstanceOf(Socks5Error);
              expect(error.code.startsWith('BRAID_ERR_')).toBe(true);
              expect(parser.phase).toBe('failed');
              break;
            }
            if (parser.phase !== 'done') expect(fed).toBeLessThanOrEqual(MAX_HANDSHAKE_BYTES + 64);
          }
          phases.set(parser.phase, (phases.get(parser.phase) ?? 0) + 1);
        },
      );
      console.log(`  phases: ${JSON.stringify(Object.fromEntries(phases))}`);
      expect(report.slowestInputMs).toBeLessThan(LIMITS.slowestInputMs);
      expect(report.heapGrowthBytes).toBeLessThan(LIMITS.heapGrowthBytes);
      expect(report.maxArrayBufferRiseBytes).toBeLessThan(LIMITS.maxArrayBufferRiseBytes);
      if (RUNS >= 1000) expect(phases.get('done') ?? 0).toBeGreaterThan(0);
    },
    TIME_LIMIT_MS + 30_000,
  );

  it(
    'the UDP header parser returns a datagram or throws Socks5Error, nothing else',
    () => {
      const report = fuzz('socks5 udp header', damaged(datagramArb), (input) => {
        try {
          const d = parseUdpDatagram(input);
          expect(d.address.port).toBeLessThanOrEqual(65535);
          expect(d.data.length).toBeLessThanOrEqual(input.length);
        } catch (err) {
          if (!(err instanceof Socks5Error)) throw err;
        }
      });
      expect(report.slowestInputMs).toBeLessThan(LIMITS.slowestInputMs);
      expect(report.heapGrowthBytes).toBeLessThan(LIMITS.heapGrowthBytes);
    },
    TIME_LIMIT_MS + 30_000,
  );
});
