import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MAX_HANDSHAKE_BYTES,
  METHOD_NONE_ACCEPTABLE,
  parseUdpDatagram,
  Reply,
  Socks5Error,
  Socks5Parser,
  type Socks5Message,
} from '../../../core/proxy/socks5-parser.js';
import {
  encodeAddress,
  encodeReply,
  encodeUdpDatagram,
} from '../../../core/proxy/socks5-encode.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Feeds `bytes` cut at `cuts` (sorted offsets), collects every message, throws the parser's error. */
function feed(parser: Socks5Parser, bytes: Buffer, cuts: number[] = []): Socks5Message[] {
  const out: Socks5Message[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    const { messages, error } = parser.push(bytes.subarray(at, cut));
    out.push(...messages);
    if (error !== undefined) throw error;
    at = cut;
  }
  return out;
}

function errorOf(fn: () => unknown): Socks5Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(Socks5Error);
    return err as Socks5Error;
  }
  throw new Error('expected a Socks5Error');
}

// RFC 1928 examples: greeting offering "no auth"; CONNECT 93.184.216.34:443.
const GREETING = hex('05 01 00');
const CONNECT_V4 = hex('05 01 00 01 5d b8 d8 22 01 bb');
// CONNECT [2001:db8::1]:8080
const CONNECT_V6 = hex('05 01 00 04 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 1f 90');
// CONNECT example.com:80
const CONNECT_DOMAIN = Buffer.concat([
  hex('05 01 00 03 0b'),
  Buffer.from('example.com'),
  hex('00 50'),
]);

describe('SOCKS5 parser (RFC 1928)', () => {
  it('parses a greeting and a CONNECT to an IPv4 address split at every byte boundary', () => {
    const all = Buffer.concat([GREETING, CONNECT_V4]);
    for (let cut = 0; cut <= all.length; cut++) {
      const messages = feed(new Socks5Parser({ requireAuth: false }), all, [cut]);
      expect(messages).toEqual([
        { type: 'greeting', methods: [0], chosen: 0 },
        {
          type: 'request',
          command: 'connect',
          address: { type: 'ipv4', host: '93.184.216.34', port: 443 },
        },
      ]);
    }
  });

  it('parses IPv6 and domain destinations one byte per write', () => {
    for (const [bytes, address] of [
      [CONNECT_V6, { type: 'ipv6', host: '2001:db8::1', port: 8080 }],
      [CONNECT_DOMAIN, { type: 'domain', host: 'example.com', port: 80 }],
    ] as const) {
      const parser = new Socks5Parser({ requireAuth: false });
      const all = Buffer.concat([GREETING, bytes]);
      const messages = feed(parser, all, [...Array(all.length).keys()]);
      expect(messages.at(-1)).toEqual({ type: 'request', command: 'connect', address });
      expect(parser.phase).toBe('done');
    }
  });

  it('parses UDP ASSOCIATE and BIND (the server answers BIND with "command not supported")', () => {
    const udp = feed(
      new Socks5Parser({ requireAuth: false }),
      Buffer.concat([GREETING, hex('05 03 00 01 00 00 00 00 00 00')]),
    );
    expect(udp[1]).toMatchObject({
      command: 'udp-associate',
      address: { host: '0.0.0.0', port: 0 },
    });
    const bind = feed(
      new Socks5Parser({ requireAuth: false }),
      Buffer.concat([GREETING, hex('05 02 00 01 7f 00 00 01 00 16')]),
    );
    expect(bind[1]).toMatchObject({ command: 'bind' });
  });

  it('hands back early data pipelined after the request, for the proxied connection', () => {
    const parser = new Socks5Parser({ requireAuth: false });
    feed(parser, Buffer.concat([GREETING, CONNECT_V4, Buffer.from('GET / HTTP/1.1\r\n')]));
    parser.push(Buffer.from('Host: x\r\n'));
    expect(parser.takeRest().toString()).toBe('GET / HTTP/1.1\r\nHost: x\r\n');
  });

  it('runs RFC 1929 username/password when required', () => {
    const parser = new Socks5Parser({ requireAuth: true });
    const auth = Buffer.concat([
      hex('01 05'),
      Buffer.from('alice'),
      hex('06'),
      Buffer.from('s3cret'),
    ]);
    const messages = feed(
      parser,
      Buffer.concat([hex('05 02 00 02'), auth, CONNECT_V4]),
      [3, 9, 15],
    );
    expect(messages.map((m) => m.type)).toEqual(['greeting', 'auth', 'request']);
    expect(messages[0]).toMatchObject({ chosen: 2 });
    expect(messages[1]).toEqual({ type: 'auth', username: 'alice', password: 's3cret' });
  });

  it('returns the messages completed before an error in the same chunk', () => {
    const { messages, error } = new Socks5Parser({ requireAuth: false }).push(
      hex('05 01 00 05 01 00 09 01 02 03 04 00 50'),
    );
    expect(messages).toEqual([{ type: 'greeting', methods: [0], chosen: 0 }]);
    expect(error).toMatchObject({ stage: 'request', reply: Reply.addressTypeNotSupported });
  });

  it('answers each malformed or unsupported input with its RFC 1928 reply', () => {
    const cases: Array<[boolean, string, Socks5Error['stage'], number | undefined]> = [
      [false, '04 01 00 50 7f 00 00 01 00', 'greeting', undefined], // SOCKS4: no SOCKS5 reply fits
      [false, '47 45 54 20', 'greeting', undefined], // "GET " (an HTTP client)
      [false, '05 00', 'greeting', METHOD_NONE_ACCEPTABLE],
      [false, '05 01 02', 'greeting', METHOD_NONE_ACCEPTABLE], // only password offered
      [true, '05 01 00', 'greeting', METHOD_NONE_ACCEPTABLE], // password required, not offered
      [true, '05 01 02 02 01', 'auth', 1],
      [true, '05 01 02 01 00', 'auth', 1],
      [false, '05 01 00 04 01', 'request', Reply.generalFailure],
      [false, '05 01 00 05 09 00 01', 'request', Reply.commandNotSupported],
      [false, '05 01 00 05 01 00 02', 'request', Reply.addressTypeNotSupported],
      [false, '05 01 00 05 01 00 03 00', 'request', Reply.hostUnreachable],
      [false, '05 01 00 05 01 00 03 03 61 3a 62 00 50', 'request', Reply.hostUnreachable], // "a:b"
    ];
    for (const [requireAuth, bytes, stage, reply] of cases) {
      const err = errorOf(() => feed(new Socks5Parser({ requireAuth }), hex(bytes)));
      expect({ bytes, stage: err.stage, reply: err.reply, code: err.code }).toEqual({
        bytes,
        stage,
        reply,
        code: 'BRAID_ERR_SOCKS',
      });
    }
  });

  it('accepts the longest legal handshake within its cap, and stays failed after an error', () => {
    const parser = new Socks5Parser({ requireAuth: true });
    const longest = Buffer.concat([
      hex('05 ff'),
      Buffer.alloc(255, 2),
      hex('01 ff'),
      Buffer.alloc(255, 0x61),
      hex('ff'),
      Buffer.alloc(255, 0x62),
      hex('05 01 00 03 ff'),
      Buffer.alloc(255, 0x63),
      hex('01 bb'),
    ]);
    expect(longest.length).toBeLessThanOrEqual(MAX_HANDSHAKE_BYTES);
    expect(feed(parser, longest, [100, 600]).map((m) => m.type)).toEqual([
      'greeting',
      'auth',
      'request',
    ]);
    const failed = new Socks5Parser({ requireAuth: false });
    expect(errorOf(() => feed(failed, hex('04 01'))).reply).toBeUndefined();
    expect(errorOf(() => feed(failed, GREETING)).code).toBe('BRAID_ERR_SOCKS');
  });

  it('parses UDP datagrams (RFC 1928 §7) and reports FRAG', () => {
    const d = parseUdpDatagram(
      Buffer.concat([hex('00 00 00 01 08 08 08 08 00 35'), Buffer.from('q')]),
    );
    expect(d).toMatchObject({ frag: 0, address: { host: '8.8.8.8', port: 53 }, headerLength: 10 });
    expect(d.data.toString()).toBe('q');
    expect(parseUdpDatagram(hex('00 00 01 01 08 08 08 08 00 35')).frag).toBe(1);
    expect(errorOf(() => parseUdpDatagram(hex('00 00 00 01 08 08'))).stage).toBe('udp');
    expect(errorOf(() => parseUdpDatagram(hex('00 00 00 07'))).code).toBe('BRAID_ERR_SOCKS');
  });

  it('encodes replies and datagram headers that the parser reads back', () => {
    expect(encodeReply(Reply.succeeded, { host: '127.0.0.1', port: 1080 })).toEqual(
      hex('05 00 00 01 7f 00 00 01 04 38'),
    );
    expect(encodeReply(Reply.connectionRefused)).toEqual(hex('05 05 00 01 00 00 00 00 00 00'));
    for (const host of [
      '::1',
      '2001:db8::1',
      '::ffff:1.2.3.4',
      'fe80::1:2:3:4',
      'example.org',
      '10.0.0.1',
    ]) {
      const datagram = encodeUdpDatagram({ host, port: 4242 }, Buffer.from('x'));
      const back = parseUdpDatagram(datagram);
      expect(back.address.port).toBe(4242);
      expect(encodeAddress(back.address)).toEqual(encodeAddress({ host, port: 4242 }));
    }
  });
});

describe('SOCKS5 parser properties (fast-check)', () => {
  const runs = Number(process.env.BRAID_FUZZ_RUNS ?? 100_000);

  it(`never throws, and fails only with a Socks5Error, on ${runs} random inputs split at random`, () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        // Bias towards plausible prefixes so that the deep states are reached too.
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc
            .tuple(fc.uint8Array({ maxLength: 48 }))
            .map(([tail]) => Uint8Array.from([5, 1, 0, 5, ...tail])),
          fc
            .tuple(fc.uint8Array({ maxLength: 48 }))
            .map(([tail]) => Uint8Array.from([5, 1, 2, 1, ...tail])),
          fc
            .tuple(fc.constantFrom(1, 3, 4), fc.uint8Array({ maxLength: 40 }))
            .map(([atyp, tail]) => Uint8Array.from([5, 1, 0, 5, 1, 0, atyp, ...tail])),
        ),
        fc.array(fc.nat(64), { maxLength: 4 }),
        (requireAuth, bytes, rawCuts) => {
          const parser = new Socks5Parser({ requireAuth });
          const cuts = [...new Set(rawCuts.map((c) => Math.min(c, bytes.length)))].sort(
            (a, b) => a - b,
          );
          let at = 0;
          for (const cut of [...cuts, bytes.length]) {
            const { error } = parser.push(bytes.subarray(at, cut));
            if (error !== undefined && !(error instanceof Socks5Error))
              throw new Error('parser failed with something other than a Socks5Error', {
                cause: error,
              });
            if (error !== undefined && parser.phase !== 'failed')
              throw new Error('parser reported an error but is not in phase "failed"');
            at = cut;
          }
          parser.takeRest();
          try {
            parseUdpDatagram(Buffer.from(bytes));
          } catch (err) {
            if (!(err instanceof Socks5Error)) throw err;
          }
        },
      ),
      { numRuns: runs, interruptAfterTimeLimit: 60_000 },
    );
  });

  it('parses any valid request the same however it is split', () => {
    const address = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.domain().filter((d) => d.length <= 255),
    );
    fc.assert(
      fc.property(
        address,
        fc.integer({ min: 1, max: 65535 }),
        fc.array(fc.nat(300), { maxLength: 5 }),
        (host, port, rawCuts) => {
          const bytes = Buffer.concat([GREETING, hex('05 01 00'), encodeAddress({ host, port })]);
          const cuts = [...new Set(rawCuts.map((c) => Math.min(c, bytes.length)))].sort(
            (a, b) => a - b,
          );
          const messages = feed(new Socks5Parser({ requireAuth: false }), bytes, cuts);
          const request = messages[1];
          expect(request?.type).toBe('request');
          if (request?.type !== 'request') return;
          expect(request.address.port).toBe(port);
          expect(encodeAddress(request.address)).toEqual(encodeAddress({ host, port }));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
