/**
 * Incremental SOCKS5 parser (RFC 1928, with RFC 1929 username/password). Pure: it
 * holds bytes and a phase, does no I/O, and says what arrived. Bytes may arrive split
 * anywhere; a message is returned once whole. Anything malformed or unsupported
 * throws a `Socks5Error` that carries the reply the server must send before it
 * closes the connection — never anything else (the fuzz test holds it to that).
 */
import { BraidError } from '../util/errors.js';

export const SOCKS_VERSION = 5;
/** RFC 1929 §2: the sub-negotiation has its own version byte. */
export const AUTH_VERSION = 1;

/** RFC 1928 §3 method numbers. */
export const METHOD_NO_AUTH = 0x00;
export const METHOD_PASSWORD = 0x02;
export const METHOD_NONE_ACCEPTABLE = 0xff;

/** RFC 1928 §6 reply field. */
export const Reply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;
export type ReplyCode = (typeof Reply)[keyof typeof Reply];

export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

export type Socks5Command = 'connect' | 'bind' | 'udp-associate';
const COMMANDS: Record<number, Socks5Command> = { 1: 'connect', 2: 'bind', 3: 'udp-associate' };

export interface Socks5Address {
  type: 'ipv4' | 'ipv6' | 'domain';
  /** Dotted quad, RFC 5952 text for IPv6 (no brackets), or the domain name as sent. */
  host: string;
  port: number;
}

export type Socks5Message =
  | {
      type: 'greeting';
      methods: number[];
      /** The method the server must answer with. */ chosen: number;
    }
  | { type: 'auth'; username: string; password: string }
  | { type: 'request'; command: Socks5Command; address: Socks5Address };

export type Socks5Phase = 'greeting' | 'auth' | 'request' | 'done' | 'failed';

/**
 * Which reply the server sends for an error: the method-selection byte after a bad
 * greeting, the RFC 1929 status after a bad sub-negotiation, the RFC 1928 §6 reply
 * for a bad request, or nothing ('close') when the peer does not speak SOCKS5 at all.
 */
export type Socks5ErrorStage = 'greeting' | 'auth' | 'request' | 'udp';

export class Socks5Error extends BraidError {
  readonly stage: Socks5ErrorStage;
  /**
   * Byte to answer with: METHOD_NONE_ACCEPTABLE (greeting), 0x01 (auth failure),
   * a ReplyCode (request), or undefined when no reply fits and the connection is just closed.
   */
  readonly reply: number | undefined;
  constructor(
    stage: Socks5ErrorStage,
    reply: number | undefined,
    message: string,
    value?: unknown,
  ) {
    super('BRAID_ERR_SOCKS', `SOCKS5 ${stage}: ${message}`, { value });
    this.name = 'Socks5Error';
    this.stage = stage;
    this.reply = reply;
  }
}

export interface Socks5ParserOptions {
  /** Require RFC 1929 username/password (method 0x02) instead of no authentication. */
  requireAuth: boolean;
}

/**
 * Longest handshake the parser holds: greeting (2 + 255), auth (3 + 255 + 255) and
 * request (6 + 1 + 255) all pipelined. Anything longer is not a SOCKS5 handshake.
 */
export const MAX_HANDSHAKE_BYTES = 1040;

/**
 * What `push` gives: the whole messages completed by this chunk, in order, and the
 * error that stopped parsing, if any. Messages before an error are still returned:
 * a client that pipelines its greeting and a bad request must get the method
 * selection first, then the failure reply.
 */
export interface Socks5Parsed {
  messages: Socks5Message[];
  error?: Socks5Error;
}

/**
 * Feed it with `push(chunk)`; each call returns the messages completed by that chunk
 * and, once the input is bad, the typed error (then the phase is 'failed'). `push`
 * never throws. After the request the phase is 'done' and `takeRest()` returns any
 * bytes the client sent early (optimistic data), which belong to the proxied connection.
 */
export class Socks5Parser {
  private buf: Buffer = Buffer.alloc(0);
  private phase_: Socks5Phase = 'greeting';
  private total = 0;
  private readonly requireAuth: boolean;

  constructor(options: Socks5ParserOptions) {
    this.requireAuth = options.requireAuth;
  }

  get phase(): Socks5Phase {
    return this.phase_;
  }

  push(chunk: Uint8Array): Socks5Parsed {
    if (this.phase_ === 'failed')
      return {
        messages: [],
        error: new Socks5Error('request', undefined, 'parser already failed'),
      };
    this.buf = concat(this.buf, chunk);
    if (this.phase_ === 'done') return { messages: [] };
    this.total += chunk.length;
    const messages: Socks5Message[] = [];
    try {
      for (;;) {
        const phase = this.phase_ as Socks5Phase;
        if (phase === 'done') break;
        const msg =
          phase === 'greeting' ? this.greeting() : phase === 'auth' ? this.auth() : this.request();
        if (msg === undefined) break;
        messages.push(msg);
      }
      // The cap counts only handshake bytes: after 'done' the rest is payload.
      const now = this.phase_ as Socks5Phase;
      if (now !== 'done' && this.total > MAX_HANDSHAKE_BYTES) {
        throw new Socks5Error(
          now === 'auth' ? 'auth' : now === 'request' ? 'request' : 'greeting',
          now === 'request' ? Reply.generalFailure : undefined,
          `handshake longer than ${MAX_HANDSHAKE_BYTES} bytes`,
          this.total,
        );
      }
    } catch (err) {
      // Only Socks5Error is thrown above; anything else is a bug and must surface.
      if (!(err instanceof Socks5Error)) throw err;
      this.phase_ = 'failed';
      return { messages, error: err };
    }
    return { messages };
  }

  /** Bytes after the request (only once the phase is 'done'). */
  takeRest(): Buffer {
    const rest = this.phase_ === 'done' ? this.buf : Buffer.alloc(0);
    this.buf = Buffer.alloc(0);
    return rest;
  }

  private consume(n: number): Buffer {
    const head = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return head;
  }

  // RFC 1928 §3: VER NMETHODS METHODS[NMETHODS]
  private greeting(): Socks5Message | undefined {
    const b = this.buf;
    if (b.length < 1) return undefined;
    if (b[0] !== SOCKS_VERSION) {
      // Not SOCKS5 (SOCKS4 or HTTP, typically): there is no reply it would understand.
      throw new Socks5Error('greeting', undefined, 'not SOCKS version 5', b[0]);
    }
    if (b.length < 2) return undefined;
    const n = b[1]!;
    if (n === 0)
      throw new Socks5Error('greeting', METHOD_NONE_ACCEPTABLE, 'greeting offers no method');
    if (b.length < 2 + n) return undefined;
    const methods = [...this.consume(2 + n).subarray(2)];
    const wanted = this.requireAuth ? METHOD_PASSWORD : METHOD_NO_AUTH;
    if (!methods.includes(wanted)) {
      throw new Socks5Error(
        'greeting',
        METHOD_NONE_ACCEPTABLE,
        this.requireAuth
          ? 'client does not offer username/password authentication'
          : 'client does not offer "no authentication"',
        methods,
      );
    }
    this.phase_ = this.requireAuth ? 'auth' : 'request';
    return { type: 'greeting', methods, chosen: wanted };
  }

  // RFC 1929 §2: VER ULEN UNAME PLEN PASSWD
  private auth(): Socks5Message | undefined {
    const b = this.buf;
    if (b.length < 1) return undefined;
    if (b[0] !== AUTH_VERSION)
      throw new Socks5Error('auth', 0x01, 'username/password version is not 1', b[0]);
    if (b.length < 2) return undefined;
    const ulen = b[1]!;
    if (ulen === 0) throw new Socks5Error('auth', 0x01, 'empty username');
    if (b.length < 3 + ulen) return undefined;
    const plen = b[2 + ulen]!;
    if (plen === 0) throw new Socks5Error('auth', 0x01, 'empty password');
    if (b.length < 3 + ulen + plen) return undefined;
    const m = this.consume(3 + ulen + plen);
    this.phase_ = 'request';
    return {
      type: 'auth',
      username: m.subarray(2, 2 + ulen).toString('utf8'),
      password: m.subarray(3 + ulen).toString('utf8'),
    };
  }

  // RFC 1928 §4: VER CMD RSV ATYP DST.ADDR DST.PORT
  private request(): Socks5Message | undefined {
    const b = this.buf;
    if (b.length < 1) return undefined;
    if (b[0] !== SOCKS_VERSION)
      throw new Socks5Error('request', Reply.generalFailure, 'request version is not 5', b[0]);
    if (b.length < 2) return undefined;
    const command = COMMANDS[b[1]!];
    if (command === undefined)
      throw new Socks5Error('request', Reply.commandNotSupported, 'unknown command', b[1]);
    if (b.length < 4) return undefined;
    // RSV (b[2]) must be 0 per RFC 1928, but clients in the wild send junk; ignore it.
    const parsed = parseAddress(b, 3, 'request');
    if (parsed === undefined) return undefined;
    this.consume(parsed.end);
    this.phase_ = 'done';
    return { type: 'request', command, address: parsed.address };
  }
}

/**
 * ATYP DST.ADDR DST.PORT at `at`. Returns undefined when more bytes are needed, the
 * address and the index after the port otherwise; throws for an unknown type or an
 * empty domain name.
 */
function parseAddress(
  b: Buffer,
  at: number,
  stage: Socks5ErrorStage,
): { address: Socks5Address; end: number } | undefined {
  if (b.length < at + 1) return undefined;
  const atyp = b[at]!;
  let host: string;
  let type: Socks5Address['type'];
  let portAt: number;
  switch (atyp) {
    case ATYP_IPV4:
      if (b.length < at + 7) return undefined;
      host = `${b[at + 1]}.${b[at + 2]}.${b[at + 3]}.${b[at + 4]}`;
      type = 'ipv4';
      portAt = at + 5;
      break;
    case ATYP_IPV6:
      if (b.length < at + 19) return undefined;
      host = formatIpv6(b.subarray(at + 1, at + 17));
      type = 'ipv6';
      portAt = at + 17;
      break;
    case ATYP_DOMAIN: {
      if (b.length < at + 2) return undefined;
      const len = b[at + 1]!;
      if (len === 0) throw new Socks5Error(stage, Reply.hostUnreachable, 'empty domain name');
      if (b.length < at + 2 + len + 2) return undefined;
      host = b.subarray(at + 2, at + 2 + len).toString('latin1');
      if (!isPlausibleDomain(host))
        throw new Socks5Error(
          stage,
          Reply.hostUnreachable,
          'domain name has invalid characters',
          host,
        );
      type = 'domain';
      portAt = at + 2 + len;
      break;
    }
    default:
      throw new Socks5Error(stage, Reply.addressTypeNotSupported, 'unknown address type', atyp);
  }
  return { address: { type, host, port: b.readUInt16BE(portAt) }, end: portAt + 2 };
}

/**
 * Domain names travel to the relay inside a target string ("tcp:host:port") and into
 * DNS; only letters, digits, '-', '_' and '.' are accepted so that no separator or
 * control character can change what the relay reads.
 */
function isPlausibleDomain(host: string): boolean {
  return /^[A-Za-z0-9_.-]+$/.test(host);
}

/** RFC 5952 text: lower case, longest run of two or more zero groups as '::'. */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestAt = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/** One SOCKS5 UDP datagram (RFC 1928 §7): RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA. */
export interface Socks5Datagram {
  frag: number;
  address: Socks5Address;
  /** Offset of DATA in the datagram (the header length). */
  headerLength: number;
  data: Buffer;
}

/** Parses a whole UDP datagram; throws a Socks5Error (stage 'udp') when it is malformed. */
export function parseUdpDatagram(datagram: Buffer): Socks5Datagram {
  if (datagram.length < 4)
    throw new Socks5Error('udp', undefined, 'datagram shorter than its header', datagram.length);
  const parsed = parseAddress(datagram, 3, 'udp');
  if (parsed === undefined)
    throw new Socks5Error('udp', undefined, 'datagram shorter than its header', datagram.length);
  return {
    frag: datagram[2]!,
    address: parsed.address,
    headerLength: parsed.end,
    data: datagram.subarray(parsed.end),
  };
}

function concat(a: Buffer, b: Uint8Array): Buffer {
  if (a.length === 0) return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return Buffer.concat([a, b]);
}
