/**
 * The TLS 1.3 control connection that sets up an association (DESIGN §3.1–3.3).
 *
 *   client                                   server
 *   TCP + TLS 1.3 (server pinned by certificate fingerprint)
 *   HELLO {version, keyId, proof, addresses, transports}  →
 *                  ← HELLO_ACK {version, associationId, addresses, udpPort, tcpPort, transports}
 *                    or ERROR {code, reason}, then close
 *
 * Frames travel as records (4-byte big-endian length, then `encodeFrames([frame])`).
 * The client proves its key with an HMAC over a TLS exporter value, so the key never
 * crosses the wire and the proof is bound to this one TLS channel. Both ends then
 * derive the association's secrets from a second exporter value (keys.ts).
 *
 * A peer that accepts TCP but does not complete TLS 1.3 in time is single-homed legacy
 * (paper §III-B). Once the certificate matched the pin the peer has proven it is the
 * Braid server, so a missing or damaged HELLO_ACK after that is an error, never legacy:
 * otherwise an on-path attacker who drops the HELLO_ACK could force the plaintext
 * fallback (SECURITY.md, "downgrade"). A certificate that does not match the pin is an
 * error for the same reason.
 */
import { EventEmitter } from 'node:events';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import * as tls from 'node:tls';
import {
  ASSOCIATION_ID_LENGTH,
  MAC_LENGTH,
  MAX_LIST_LENGTH,
  MAX_STRING_LENGTH,
  TRANSPORT_KINDS,
  WIRE_VERSION,
  type Frame,
  type HelloAckFrame,
  type HelloFrame,
  type TransportKind,
} from '../wire/frame.js';
import { encodeFrames } from '../wire/encode.js';
import { decodeFrames } from '../wire/decode.js';
import { RECORD_HEADER_LENGTH, writeRecordHeader } from '../wire/record-decoder.js';
import { BraidError, codeName, type ErrorCode } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { ClientKey } from './identity-store.js';
import {
  CLIENT_AUTH_LABEL,
  EXPORTER_LABEL,
  EXPORTER_LENGTH,
  deriveAssociationSecrets,
  helloProof,
  type AssociationSecrets,
} from './keys.js';

export const DEFAULT_SERVER_HELLO_TIMEOUT_MS = 5000;
export const DEFAULT_CLIENT_HELLO_TIMEOUT_MS = 3000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/**
 * Largest handshake record accepted. A HELLO with MAX_LIST_LENGTH addresses of the
 * longest string is about 16.5 KiB; anything larger is not a HELLO.
 */
export const MAX_HANDSHAKE_RECORD = 32 * 1024;
/** How long a refused peer gets to read our ERROR before the socket is destroyed. */
const ERROR_LINGER_MS = 1000;
/**
 * Unauthenticated control connections (TCP accepted, no valid HELLO yet) held at once.
 * Each costs a TLS context (about 10-40 KiB) for up to helloTimeoutMs; without a cap a
 * single Internet host could open sockets until the relay runs out of memory or file
 * descriptors (bench/resources.ts measures it). Established associations are never
 * affected by the cap. When it is full, a newcomer is not simply refused (a flood from
 * a few dozen addresses would then lock every client out): the oldest pending
 * connection of the most crowded network prefix (IPv4 /24, IPv6 /64), and within it of
 * the most crowded address, is closed to make room, provided the newcomer's own prefix
 * (or, in the same prefix, its address) holds fewer. A newcomer from a prefix at least
 * as crowded as any other is closed at once, before any TLS work.
 */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 1024;
/** The same, per remote address: one host cannot take the whole budget from the others. */
export const DEFAULT_MAX_PENDING_PER_ADDRESS = 64;
/** At most one log line per this interval about connections refused over the caps. */
const CAP_LOG_INTERVAL_MS = 10_000;

/**
 * The network prefix an address is counted under when the pending cap is full: /24 for
 * IPv4 (an IPv4-mapped IPv6 address counts as its IPv4 address), /64 for IPv6, which is
 * what one subscriber or one cloud host usually holds.
 */
export function pendingPrefix(address: string): string {
  const v4 =
    address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  if (isIP(v4) === 4) return `${v4.slice(0, v4.lastIndexOf('.'))}.0/24`;
  if (isIP(address) !== 6) return address;
  // Expand "::" so that the first four groups are the /64.
  const [head = '', tail] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? headGroups
      : [
          ...headGroups,
          ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'),
          ...tailGroups,
        ];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

const EMPTY = Buffer.alloc(0);
const FINGERPRINT_RE = /^[0-9a-f]{64}$/;
const KEY_ID_RE = /^[0-9a-f]{16}$/;

export interface EstablishedAssociation {
  role: 'client' | 'server';
  associationId: Buffer;
  secrets: AssociationSecrets;
  local: { addresses: string[]; transports: TransportKind[] };
  /** On the server, the client's ports are 0: the client listens on nothing. */
  remote: { addresses: string[]; udpPort: number; tcpPort: number; transports: TransportKind[] };
  /**
   * The control connection, left open for ERROR and close notices. The association
   * must not depend on it (DESIGN §3.4). The handshake's listeners are removed; a
   * listener that only logs 'error' stays so that a reset never goes unhandled. It
   * stays in flowing mode: attach a 'data' listener at once to read later records.
   */
  control: tls.TLSSocket;
  /** Bytes that arrived after the handshake record in the same read, not yet consumed. */
  leftover: Buffer;
  /** "host:port" of the peer's control endpoint (IPv6 in brackets). */
  peer: string;
  /** Server side: the name of the client key that authenticated. */
  clientName?: string;
}

export type ControlResult =
  { kind: 'braid'; association: EstablishedAssociation } | { kind: 'legacy'; reason: string };

// ---------------------------------------------------------------------------
// Records

function encodeRecord(frame: Frame): Buffer {
  const body = encodeFrames([frame]);
  const out = Buffer.allocUnsafe(RECORD_HEADER_LENGTH + body.length);
  writeRecordHeader(out, 0, body.length);
  body.copy(out, RECORD_HEADER_LENGTH);
  return out;
}

/**
 * Collects the single record of one side of the handshake and keeps whatever follows
 * it, so that no byte meant for the association layer is consumed here. Exported for
 * the fuzzer (test/fuzz/handshake.test.ts).
 */
export class HandshakeRecordReader {
  private buf: Buffer = EMPTY;

  push(chunk: Buffer): { record: Buffer; leftover: Buffer } | BraidError | undefined {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.buf.length < RECORD_HEADER_LENGTH) return undefined;
    const length = this.buf.readUInt32BE(0);
    if (length > MAX_HANDSHAKE_RECORD) {
      return new BraidError(
        'BRAID_ERR_WIRE_TOO_LARGE',
        `handshake record of ${length} bytes is over the cap of ${MAX_HANDSHAKE_RECORD}`,
        { value: length },
      );
    }
    const end = RECORD_HEADER_LENGTH + length;
    if (this.buf.length < end) return undefined;
    return {
      record: this.buf.subarray(RECORD_HEADER_LENGTH, end),
      leftover: Buffer.from(this.buf.subarray(end)),
    };
  }
}

/** The one frame of a handshake record, or why there is not exactly one. */
export function singleFrame(record: Buffer): Frame | BraidError {
  const decoded = decodeFrames(record);
  if (!decoded.ok) return decoded.error;
  if (decoded.value.length !== 1) {
    return new BraidError('BRAID_ERR_HANDSHAKE', 'handshake record must hold exactly one frame', {
      value: decoded.value.length,
    });
  }
  return decoded.value[0]!;
}

// ---------------------------------------------------------------------------
// Helpers

function formatPeer(host: string | undefined, port: number | undefined): string {
  const h = host ?? 'unknown';
  return `${isIP(h) === 6 ? `[${h}]` : h}:${port ?? 0}`;
}

function checkAddresses(addresses: string[], what: string): BraidError | undefined {
  if (addresses.length === 0 || addresses.length > MAX_LIST_LENGTH) {
    return new BraidError(
      'BRAID_ERR_HANDSHAKE',
      `${what} must list 1 to ${MAX_LIST_LENGTH} addresses`,
      { value: addresses.length },
    );
  }
  const bad = addresses.find((a) => isIP(a) === 0);
  if (bad !== undefined) {
    return new BraidError(
      'BRAID_ERR_HANDSHAKE',
      `${what} lists something that is not an IP address`,
      {
        value: bad,
      },
    );
  }
  return undefined;
}

function checkTransports(transports: TransportKind[], what: string): BraidError | undefined {
  if (transports.length === 0 || transports.some((t) => !TRANSPORT_KINDS.includes(t))) {
    return new BraidError('BRAID_ERR_HANDSHAKE', `${what} must list at least one known transport`, {
      value: transports.join(','),
    });
  }
  return undefined;
}

/** Truncates a reason to the wire's string limit in UTF-8 bytes, at a character boundary. */
function wireReason(text: string): string {
  let out = text;
  while (Buffer.byteLength(out, 'utf8') > MAX_STRING_LENGTH) out = out.slice(0, -1);
  return out;
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** The error a received ERROR frame stands for; codes we do not know map to BRAID_ERR_HANDSHAKE. */
function errorFromFrame(code: number, reason: string, peer: string): BraidError {
  const name = codeName(code);
  const mapped: ErrorCode = name === 'UNKNOWN' ? 'BRAID_ERR_HANDSHAKE' : name;
  return new BraidError(mapped, `peer refused the association: ${reason}`, {
    peer,
    value: code,
  });
}

/**
 * The checks of a HELLO that need no key: version, addresses, transports. The server
 * runs them before the proof; exported for the fuzzer.
 */
export function checkHello(hello: HelloFrame, remote: string): BraidError | undefined {
  // The version travels inside TLS, so a HELLO cannot be rewritten to an older version.
  if (hello.version !== WIRE_VERSION) {
    return new BraidError(
      'BRAID_ERR_WIRE_VERSION',
      `this server speaks wire version ${WIRE_VERSION}, not ${hello.version}`,
      { peer: remote, value: hello.version },
    );
  }
  return checkAddresses(hello.addresses, 'HELLO') ?? checkTransports(hello.transports, 'HELLO');
}

/** The client's checks of a HELLO_ACK before it derives keys; exported for the fuzzer. */
export function checkHelloAck(ack: HelloAckFrame, peer: string): BraidError | undefined {
  if (ack.version !== WIRE_VERSION) {
    return new BraidError(
      'BRAID_ERR_WIRE_VERSION',
      `server answered with wire version ${ack.version}`,
      { peer, value: ack.version },
    );
  }
  const invalid =
    checkAddresses(ack.addresses, 'HELLO_ACK') ?? checkTransports(ack.transports, 'HELLO_ACK');
  if (invalid !== undefined) return invalid;
  if (
    ack.associationId.length !== ASSOCIATION_ID_LENGTH ||
    !isPort(ack.udpPort) ||
    !isPort(ack.tcpPort)
  ) {
    return new BraidError('BRAID_ERR_HANDSHAKE', 'malformed HELLO_ACK', { peer });
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Server

export interface ControlServerOptions {
  identity: { keyPem: string; certPem: string };
  /** Looked up at each HELLO, so keys added while the server runs are accepted at once. */
  clients: () => ClientKey[];
  /** The server's n addresses, advertised in HELLO_ACK. */
  addresses: string[];
  udpPort: number;
  tcpPort: number;
  transports: TransportKind[];
  logger?: Logger;
  /** Time from TCP accept to a valid HELLO. */
  helloTimeoutMs?: number;
  /** Cap on unauthenticated connections at once (default DEFAULT_MAX_PENDING_HANDSHAKES). */
  maxPendingHandshakes?: number;
  /** Cap per remote address (default DEFAULT_MAX_PENDING_PER_ADDRESS). */
  maxPendingPerAddress?: number;
  clock?: Clock;
}

/** Counters of the control port, for tests, logs and the resource benchmark. */
export interface ControlServerStats {
  /** Unauthenticated connections open now (accepted, no association yet). */
  pending: number;
  /** Connections closed on accept because a pending cap was reached. */
  refusedOverCap: number;
  /** Pending connections closed to make room for a newcomer from a less crowded prefix. */
  evicted: number;
}

export interface ControlServerEvents {
  association: [EstablishedAssociation];
  /** A connection that did not become an association, and its remote "host:port". */
  rejected: [BraidError, string];
}

function remoteKey(address: string | undefined, port: number | undefined): string {
  return `${address ?? ''}|${port ?? 0}`;
}

/** Accepts control connections and turns each valid HELLO into an EstablishedAssociation. */
export class ControlServer extends EventEmitter<ControlServerEvents> {
  private readonly server: tls.Server;
  private readonly options: ControlServerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly helloTimeoutMs: number;
  /** Accepted TCP connections, for close(); entries leave when the connection closes. */
  private readonly connections = new Set<Socket>();
  /** Accept time per remote endpoint, so the HELLO deadline counts from TCP accept. */
  private readonly acceptedAt = new Map<string, number>();
  /** Unauthenticated connections by remote endpoint, oldest first. */
  private readonly pending = new Map<string, { address: string; prefix: string; raw: Socket }>();
  /** Pending connections per remote address, oldest first (the per-address cap). */
  private readonly pendingByAddress = new Map<string, Set<string>>();
  /** Pending connections per prefix (pendingPrefix), for eviction when the cap is full. */
  private readonly pendingByPrefix = new Map<string, Map<string, Set<string>>>();
  private readonly maxPending: number;
  private readonly maxPendingPerAddress: number;
  private refusedOverCap = 0;
  private evicted = 0;
  /** Raw sockets closed over a cap, so their TLS error is not reported once per socket. */
  private readonly overCap = new WeakSet<Socket>();
  private capLoggedAt = -Infinity;
  private closing = false;

  constructor(options: ControlServerOptions) {
    super();
    this.options = options;
    this.log = (options.logger ?? createLogger()).child({ component: 'control-server' });
    this.clock = options.clock ?? systemClock;
    this.helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_SERVER_HELLO_TIMEOUT_MS;
    this.maxPending = options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES;
    this.maxPendingPerAddress = options.maxPendingPerAddress ?? DEFAULT_MAX_PENDING_PER_ADDRESS;
    if (
      !Number.isSafeInteger(this.maxPending) ||
      this.maxPending < 1 ||
      !Number.isSafeInteger(this.maxPendingPerAddress) ||
      this.maxPendingPerAddress < 1
    ) {
      throw new BraidError('BRAID_ERR_USAGE', 'pending handshake caps must be whole numbers >= 1', {
        value: `${this.maxPending}/${this.maxPendingPerAddress}`,
      });
    }
    const invalid =
      checkAddresses(options.addresses, 'server addresses') ??
      checkTransports(options.transports, 'server transports');
    if (invalid !== undefined) {
      throw new BraidError('BRAID_ERR_USAGE', invalid.message, { value: invalid.value });
    }
    if (!isPort(options.udpPort) || !isPort(options.tcpPort)) {
      throw new BraidError('BRAID_ERR_USAGE', 'data ports must be 0 to 65535', {
        value: `${options.udpPort}/${options.tcpPort}`,
      });
    }
    try {
      this.server = tls.createServer({
        key: options.identity.keyPem,
        cert: options.identity.certPem,
        minVersion: 'TLSv1.3',
        maxVersion: 'TLSv1.3',
        // The same deadline bounds the TLS phase; onSecure gives HELLO what is left of it.
        handshakeTimeout: this.helloTimeoutMs,
        // Clients authenticate with their key in HELLO, not with a certificate.
        requestCert: false,
      });
    } catch (err) {
      throw new BraidError('BRAID_ERR_CONFIG', 'TLS identity is not usable', { cause: err });
    }
    // Before tls.Server's own listener, so a connection over the cap gets no TLS context.
    this.server.prependListener('connection', (raw: Socket) => this.onAccept(raw));
    this.server.on('secureConnection', (socket: tls.TLSSocket) => this.onSecure(socket));
    this.server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) =>
      this.onTlsError(err, socket),
    );
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          new BraidError('BRAID_ERR_TRANSPORT', 'cannot listen for control connections', {
            peer: formatPeer(host, port),
            cause: err,
          }),
        );
      };
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        this.server.on('error', (err: Error) =>
          this.log.error('control server error', errorFields(err)),
        );
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Stops accepting and destroys every control connection, handshaking or handed
   * over; associations outlive their control connection (DESIGN §3.4).
   */
  close(): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => {
      if (!this.server.listening) {
        for (const raw of this.connections) raw.destroy();
        resolve();
        return;
      }
      this.server.close(() => resolve());
      for (const raw of this.connections) raw.destroy();
    });
  }

  get stats(): ControlServerStats {
    return {
      pending: this.pending.size,
      refusedOverCap: this.refusedOverCap,
      evicted: this.evicted,
    };
  }

  private onAccept(raw: Socket): void {
    const address = raw.remoteAddress ?? '';
    const prefix = pendingPrefix(address);
    const key = remoteKey(raw.remoteAddress, raw.remotePort);
    const fromAddress = this.pendingByAddress.get(address)?.size ?? 0;
    if (fromAddress >= this.maxPendingPerAddress) {
      this.refuseOverCap(raw, address, fromAddress);
      return;
    }
    if (this.pending.size >= this.maxPending) {
      const victim = this.evictionVictim(address, prefix);
      if (victim === undefined) {
        this.refuseOverCap(raw, address, fromAddress);
        return;
      }
      this.evict(victim);
    }
    this.connections.add(raw);
    this.acceptedAt.set(key, this.clock.now());
    this.pending.set(key, { address, prefix, raw });
    let ofAddress = this.pendingByAddress.get(address);
    if (ofAddress === undefined)
      this.pendingByAddress.set(address, (ofAddress = new Set<string>()));
    ofAddress.add(key);
    let ofPrefix = this.pendingByPrefix.get(prefix);
    if (ofPrefix === undefined)
      this.pendingByPrefix.set(prefix, (ofPrefix = new Map<string, Set<string>>()));
    ofPrefix.set(address, ofAddress);
    raw.once('close', () => {
      this.connections.delete(raw);
      this.acceptedAt.delete(key);
      this.release(key);
    });
    raw.setNoDelay(true);
  }

  /** The connection is no longer unauthenticated (handed over) or is gone. */
  private release(key: string): void {
    const entry = this.pending.get(key);
    if (entry === undefined) return;
    this.pending.delete(key);
    const ofAddress = this.pendingByAddress.get(entry.address);
    ofAddress?.delete(key);
    if (ofAddress === undefined || ofAddress.size > 0) return;
    this.pendingByAddress.delete(entry.address);
    const ofPrefix = this.pendingByPrefix.get(entry.prefix);
    ofPrefix?.delete(entry.address);
    if (ofPrefix?.size === 0) this.pendingByPrefix.delete(entry.prefix);
  }

  /** Pending connections of a prefix. */
  private prefixCount(prefix: string): number {
    let n = 0;
    for (const keys of this.pendingByPrefix.get(prefix)?.values() ?? []) n += keys.size;
    return n;
  }

  /**
   * With the cap full: the pending connection to close for a newcomer from `address`,
   * or undefined when the newcomer's prefix (or, within the most crowded prefix, its
   * address) is already at least as crowded as any other. The victim is the oldest
   * connection of the most crowded address of the most crowded prefix, so a flood
   * only ever displaces itself, and a client from a quiet prefix or address gets in.
   * O(prefixes + addresses of one prefix), both bounded by the cap.
   */
  private evictionVictim(address: string, prefix: string): string | undefined {
    let worstPrefix = prefix;
    let worstCount = this.prefixCount(prefix);
    for (const p of this.pendingByPrefix.keys()) {
      const n = this.prefixCount(p);
      if (n > worstCount) {
        worstPrefix = p;
        worstCount = n;
      }
    }
    const addresses = this.pendingByPrefix.get(worstPrefix);
    if (addresses === undefined) return undefined;
    let worstAddress = worstPrefix === prefix ? address : undefined;
    let worstKeys = worstPrefix === prefix ? this.pendingByAddress.get(address) : undefined;
    for (const [a, keys] of addresses) {
      if (keys.size > (worstKeys?.size ?? 0)) {
        worstAddress = a;
        worstKeys = keys;
      }
    }
    // The newcomer's own address is the most crowded: it waits, nobody is displaced.
    if (worstAddress === address || worstKeys === undefined) return undefined;
    return worstKeys.values().next().value;
  }

  /** Closes a pending connection to make room; its close is not logged per socket. */
  private evict(key: string): void {
    const entry = this.pending.get(key);
    if (entry === undefined) return;
    this.evicted++;
    this.overCap.add(entry.raw);
    this.release(key);
    entry.raw.destroy();
  }

  /**
   * Closes a connection over a pending cap. tls.Server has already wrapped it (its
   * listener runs in the same tick), so the TLS socket sees a reset; onTlsError skips
   * those so that a flood does not also flood the log.
   */
  private refuseOverCap(raw: Socket, address: string, fromAddress: number): void {
    this.refusedOverCap++;
    this.overCap.add(raw);
    raw.on('error', () => undefined);
    raw.destroy();
    const now = this.clock.now();
    if (now - this.capLoggedAt >= CAP_LOG_INTERVAL_MS) {
      this.capLoggedAt = now;
      this.log.warn('control connection refused: too many unauthenticated connections', {
        remote: address,
        pending: this.pending.size,
        fromAddress,
        maxPending: this.maxPending,
        maxPendingPerAddress: this.maxPendingPerAddress,
        refusedOverCap: this.refusedOverCap,
        evicted: this.evicted,
      });
    }
  }

  private reject(err: BraidError, remote: string): void {
    if (this.closing) return;
    this.log.warn('control connection rejected', { remote, ...errorFields(err) });
    this.emit('rejected', err, remote);
  }

  /** TLS failed before a secure connection: not TLS, not TLS 1.3, or too slow. */
  private onTlsError(err: Error, socket: tls.TLSSocket): void {
    const remote = formatPeer(socket.remoteAddress, socket.remotePort);
    // Node does not destroy the socket on a handshake timeout.
    socket.destroy();
    // `_parent` is the raw socket tls.Server wrapped (a Node internal; without it a
    // refused connection is merely logged twice).
    const raw = (socket as unknown as { _parent?: unknown })._parent;
    if (raw instanceof Object && this.overCap.has(raw as Socket)) return;
    const code = (err as { code?: unknown }).code;
    this.reject(
      new BraidError(
        code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
          ? 'BRAID_ERR_HANDSHAKE_TIMEOUT'
          : 'BRAID_ERR_HANDSHAKE',
        `TLS handshake failed: ${err.message.split('\n')[0] ?? ''}`,
        { peer: remote, cause: err },
      ),
      remote,
    );
  }

  private onSecure(socket: tls.TLSSocket): void {
    const remote = formatPeer(socket.remoteAddress, socket.remotePort);
    const key = remoteKey(socket.remoteAddress, socket.remotePort);
    const accepted = this.acceptedAt.get(key);
    const elapsed = accepted === undefined ? 0 : this.clock.now() - accepted;
    const remaining = Math.max(0, this.helloTimeoutMs - elapsed);
    const log = this.log.child({ remote });
    // Stays for the socket's life: a reset after hand-over must not crash the process.
    socket.on('error', (err: Error) => log.debug('control connection error', errorFields(err)));

    const reader = new HandshakeRecordReader();
    let settled = false;
    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
    };
    const raw = (socket as unknown as { _parent?: unknown })._parent;
    const refuse = (err: BraidError, notify: boolean): void => {
      if (settled) return;
      cleanup();
      // Evicted to make room for a newcomer (onAccept): counted there, not logged per socket.
      if (raw instanceof Object && this.overCap.has(raw as Socket)) {
        socket.destroy();
        return;
      }
      if (notify && !socket.destroyed) {
        socket.end(
          encodeRecord({ type: 'error', code: err.wireCode, reason: wireReason(err.message) }),
        );
        setTimeout(() => socket.destroy(), ERROR_LINGER_MS).unref();
      } else {
        socket.destroy();
      }
      this.reject(err, remote);
    };
    const onData = (chunk: Buffer): void => {
      const got = reader.push(chunk);
      if (got === undefined) return;
      if (got instanceof BraidError) {
        refuse(got, true);
        return;
      }
      const frame = singleFrame(got.record);
      if (frame instanceof BraidError) {
        refuse(frame, true);
        return;
      }
      if (frame.type !== 'hello') {
        refuse(
          new BraidError('BRAID_ERR_HANDSHAKE', 'expected HELLO', {
            peer: remote,
            value: frame.type,
          }),
          true,
        );
        return;
      }
      let outcome: Omit<EstablishedAssociation, 'leftover'> | BraidError;
      try {
        outcome = this.answerHello(socket, frame, remote);
      } catch (err) {
        // A throw from a 'data' listener would take the whole relay down.
        outcome = new BraidError('BRAID_ERR_INTERNAL', 'cannot answer HELLO', {
          peer: remote,
          cause: err,
        });
      }
      if (outcome instanceof BraidError) {
        refuse(outcome, true);
        return;
      }
      cleanup();
      // Authenticated: it no longer counts against the unauthenticated caps.
      this.release(key);
      const established: EstablishedAssociation = { ...outcome, leftover: got.leftover };
      log.info('association established', {
        assoc: established.associationId.toString('hex'),
        client: established.clientName,
        addresses: frame.addresses.join(','),
      });
      this.emit('association', established);
    };
    const onClose = (): void =>
      refuse(
        new BraidError('BRAID_ERR_HANDSHAKE', 'connection closed before HELLO', { peer: remote }),
        false,
      );
    const onError = (err: Error): void =>
      refuse(
        new BraidError('BRAID_ERR_HANDSHAKE', 'control connection failed before HELLO', {
          peer: remote,
          cause: err,
        }),
        false,
      );
    const timer = setTimeout(
      () =>
        refuse(
          new BraidError(
            'BRAID_ERR_HANDSHAKE_TIMEOUT',
            `no HELLO within ${this.helloTimeoutMs} ms`,
            {
              peer: remote,
            },
          ),
          true,
        ),
      remaining,
    );
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
  }

  /** Checks a HELLO and sends HELLO_ACK; returns the association or the reason to refuse. */
  private answerHello(
    socket: tls.TLSSocket,
    hello: HelloFrame,
    remote: string,
  ): Omit<EstablishedAssociation, 'leftover'> | BraidError {
    const invalid = checkHello(hello, remote);
    if (invalid !== undefined) return invalid;
    if (!hello.transports.some((t) => this.options.transports.includes(t))) {
      return new BraidError('BRAID_ERR_HANDSHAKE', 'no transport in common', {
        peer: remote,
        value: hello.transports.join(','),
      });
    }
    let clients: ClientKey[];
    try {
      clients = this.options.clients();
    } catch (err) {
      this.log.error('client key store unavailable', errorFields(err));
      return new BraidError('BRAID_ERR_INTERNAL', 'client keys unavailable', {
        peer: remote,
        cause: err,
      });
    }
    const keyId = Buffer.from(hello.keyId).toString('hex');
    const client = clients.find((c) => c.keyId === keyId);
    const expected =
      client === undefined
        ? undefined
        : helloProof(
            client.key,
            socket.exportKeyingMaterial(EXPORTER_LENGTH, CLIENT_AUTH_LABEL, EMPTY),
          );
    // One reason for an unknown key and a wrong proof: the peer learns nothing about which.
    if (
      expected === undefined ||
      hello.proof.length !== MAC_LENGTH ||
      !timingSafeEqual(expected, hello.proof)
    ) {
      return new BraidError('BRAID_ERR_AUTH_FAILED', 'client key not accepted', {
        peer: remote,
        value: keyId,
      });
    }
    const associationId = randomBytes(ASSOCIATION_ID_LENGTH);
    const ack: HelloAckFrame = {
      type: 'hello_ack',
      version: WIRE_VERSION,
      associationId,
      addresses: this.options.addresses,
      udpPort: this.options.udpPort,
      tcpPort: this.options.tcpPort,
      transports: this.options.transports,
    };
    socket.write(encodeRecord(ack));
    const secrets = deriveAssociationSecrets(
      socket.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, associationId),
      associationId,
    );
    return {
      role: 'server',
      associationId,
      secrets,
      local: { addresses: [...this.options.addresses], transports: [...this.options.transports] },
      remote: { addresses: hello.addresses, udpPort: 0, tcpPort: 0, transports: hello.transports },
      control: socket,
      peer: remote,
      clientName: client!.name,
    };
  }
}

// ---------------------------------------------------------------------------
// Client

export interface ConnectControlOptions {
  host: string;
  port: number;
  /** Pinned SHA-256 of the server certificate's DER, lowercase hex. */
  fingerprint: string;
  keyId: string;
  key: Buffer;
  /** Local address to connect from (the first uplink). */
  localAddress?: string;
  /** The client's m addresses, advertised in HELLO. */
  addresses: string[];
  transports: TransportKind[];
  /** From TCP connect to HELLO_ACK; past it the peer counts as legacy. */
  helloTimeoutMs?: number;
  /** For the TCP connect alone. */
  connectTimeoutMs?: number;
  logger?: Logger;
}

type ClientPhase = 'tcp' | 'tls' | 'hello';

/**
 * Opens the control connection and runs the handshake. Resolves `braid` with the
 * association, or `legacy` when the peer accepts TCP but does not complete a TLS 1.3
 * handshake within helloTimeoutMs. Rejects BRAID_ERR_FINGERPRINT on a certificate
 * that does not match the pin, BRAID_ERR_HANDSHAKE_TIMEOUT when the pinned server does
 * not answer HELLO in time, BRAID_ERR_TRANSPORT when TCP cannot connect, and the
 * peer's code when it answers with ERROR.
 */
export function connectControl(options: ConnectControlOptions): Promise<ControlResult> {
  const peer = formatPeer(options.host, options.port);
  const fingerprint = options.fingerprint.toLowerCase();
  const keyId = options.keyId.toLowerCase();
  const usage =
    (!FINGERPRINT_RE.test(fingerprint) ? 'fingerprint must be 64 hex characters' : undefined) ??
    (!KEY_ID_RE.test(keyId) ? 'keyId must be 16 hex characters' : undefined) ??
    (options.key.length !== 32 ? 'key must be 32 bytes' : undefined) ??
    (!isPort(options.port) || options.port === 0 ? 'port must be 1 to 65535' : undefined) ??
    checkAddresses(options.addresses, 'addresses')?.message ??
    checkTransports(options.transports, 'transports')?.message;
  if (usage !== undefined) {
    return Promise.reject(new BraidError('BRAID_ERR_USAGE', usage, { peer }));
  }
  const helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_CLIENT_HELLO_TIMEOUT_MS;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const log = (options.logger ?? createLogger()).child({ component: 'control-client', peer });

  return new Promise<ControlResult>((resolve, reject) => {
    let phase: ClientPhase = 'tcp';
    let settled = false;
    const reader = new HandshakeRecordReader();
    // localAddress is passed on to net.Socket.connect, though ConnectionOptions omits it.
    const connectOptions: tls.ConnectionOptions & { localAddress?: string } = {
      host: options.host,
      port: options.port,
      localAddress: options.localAddress,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      // The server is authenticated by the pinned fingerprint, checked on secureConnect.
      rejectUnauthorized: false,
      // SNI only for names (RFC 6066 §3 forbids IP literals).
      servername: isIP(options.host) === 0 ? options.host : undefined,
    };
    const socket = tls.connect(connectOptions);
    socket.setNoDelay(true);
    // Stays for the socket's life: a reset after hand-over must not crash the process.
    socket.on('error', (err: Error) => log.debug('control connection error', errorFields(err)));

    let helloTimer: NodeJS.Timeout | undefined;
    const connectTimer = setTimeout(
      () =>
        fail(
          new BraidError(
            'BRAID_ERR_TRANSPORT',
            `TCP connect timed out after ${connectTimeoutMs} ms`,
            {
              peer,
            },
          ),
        ),
      connectTimeoutMs,
    );

    const cleanup = (): void => {
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(helloTimer);
      socket.off('connect', onConnect);
      socket.off('secureConnect', onSecureConnect);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const fail = (err: BraidError): void => {
      if (settled) return;
      cleanup();
      socket.destroy();
      reject(err);
    };
    const legacy = (reason: string): void => {
      if (settled) return;
      cleanup();
      socket.destroy();
      log.info('peer is not a Braid server', { reason });
      resolve({ kind: 'legacy', reason });
    };

    const onConnect = (): void => {
      phase = 'tls';
      clearTimeout(connectTimer);
      helloTimer = setTimeout(() => {
        if (phase === 'tls') {
          legacy(`no TLS 1.3 handshake within ${helloTimeoutMs} ms`);
          return;
        }
        // The pinned certificate proved a Braid server: silence now is an attack or a
        // fault, and falling back to plaintext would hand the attacker a downgrade.
        fail(
          new BraidError(
            'BRAID_ERR_HANDSHAKE_TIMEOUT',
            `no answer to HELLO within ${helloTimeoutMs} ms from the pinned server`,
            { peer },
          ),
        );
      }, helloTimeoutMs);
    };

    const onSecureConnect = (): void => {
      phase = 'hello';
      // Pin before sending anything: a wrong certificate never sees our HELLO.
      const raw = socket.getPeerCertificate().raw as Buffer | undefined;
      const seen = raw === undefined ? '' : createHash('sha256').update(raw).digest('hex');
      if (
        seen.length !== fingerprint.length ||
        !timingSafeEqual(Buffer.from(seen), Buffer.from(fingerprint))
      ) {
        fail(
          new BraidError(
            'BRAID_ERR_FINGERPRINT',
            'server certificate does not match the pinned fingerprint',
            {
              peer,
              value: seen,
            },
          ),
        );
        return;
      }
      if (socket.getProtocol() !== 'TLSv1.3') {
        fail(
          new BraidError('BRAID_ERR_HANDSHAKE', 'control connection is not TLS 1.3', {
            peer,
            value: socket.getProtocol(),
          }),
        );
        return;
      }
      const proof = helloProof(
        options.key,
        socket.exportKeyingMaterial(EXPORTER_LENGTH, CLIENT_AUTH_LABEL, EMPTY),
      );
      let hello: Buffer;
      try {
        hello = encodeRecord({
          type: 'hello',
          version: WIRE_VERSION,
          keyId: Buffer.from(keyId, 'hex'),
          proof,
          addresses: options.addresses,
          transports: options.transports,
        });
      } catch (err) {
        fail(
          err instanceof BraidError
            ? err
            : new BraidError('BRAID_ERR_INTERNAL', 'cannot encode HELLO', { cause: err }),
        );
        return;
      }
      socket.on('data', onData);
      socket.write(hello);
    };

    const onData = (chunk: Buffer): void => {
      const got = reader.push(chunk);
      if (got === undefined) return;
      if (got instanceof BraidError) {
        fail(got);
        return;
      }
      const frame = singleFrame(got.record);
      if (frame instanceof BraidError) {
        fail(frame);
        return;
      }
      if (frame.type === 'error') {
        fail(errorFromFrame(frame.code, frame.reason, peer));
        return;
      }
      if (frame.type !== 'hello_ack') {
        fail(
          new BraidError('BRAID_ERR_HANDSHAKE', 'expected HELLO_ACK', { peer, value: frame.type }),
        );
        return;
      }
      const ack = frame;
      const invalid = checkHelloAck(ack, peer);
      if (invalid !== undefined) {
        fail(invalid);
        return;
      }
      const associationId = Buffer.from(ack.associationId);
      let secrets: AssociationSecrets;
      try {
        secrets = deriveAssociationSecrets(
          socket.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, associationId),
          associationId,
        );
      } catch (err) {
        fail(
          new BraidError('BRAID_ERR_HANDSHAKE', 'cannot derive association keys', {
            peer,
            cause: err,
          }),
        );
        return;
      }
      cleanup();
      log.info('association established', { assoc: associationId.toString('hex') });
      resolve({
        kind: 'braid',
        association: {
          role: 'client',
          associationId,
          secrets,
          local: { addresses: [...options.addresses], transports: [...options.transports] },
          remote: {
            addresses: ack.addresses,
            udpPort: ack.udpPort,
            tcpPort: ack.tcpPort,
            transports: ack.transports,
          },
          control: socket,
          leftover: got.leftover,
          peer,
        },
      });
    };

    const onError = (err: Error): void => {
      switch (phase) {
        case 'tcp':
          fail(
            new BraidError('BRAID_ERR_TRANSPORT', `cannot connect to ${peer}`, {
              peer,
              cause: err,
            }),
          );
          return;
        case 'tls':
          // TCP works but TLS 1.3 does not: not a Braid server (paper §III-B fallback).
          legacy(`TLS handshake failed: ${err.message.split('\n')[0] ?? ''}`);
          return;
        case 'hello':
          fail(
            new BraidError('BRAID_ERR_HANDSHAKE', 'control connection failed before HELLO_ACK', {
              peer,
              cause: err,
            }),
          );
          return;
      }
    };

    const onClose = (): void => {
      switch (phase) {
        case 'tcp':
          fail(new BraidError('BRAID_ERR_TRANSPORT', `cannot connect to ${peer}`, { peer }));
          return;
        case 'tls':
          legacy('peer closed the connection during the TLS handshake');
          return;
        case 'hello':
          fail(
            new BraidError(
              'BRAID_ERR_HANDSHAKE',
              'server closed the control connection without answering HELLO',
              {
                peer,
              },
            ),
          );
          return;
      }
    };

    socket.on('connect', onConnect);
    socket.on('secureConnect', onSecureConnect);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
