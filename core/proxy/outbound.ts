/**
 * Where the SOCKS server sends a connection once it knows the app and its rule. One
 * interface, three implementations: through the relay (relay-outbound.ts), straight
 * out on the best uplink when no relay is configured (direct.ts), and bypass — the
 * OS's default route, untouched by the session layer (here).
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Objective } from '../wire/frame.js';
import type { DatagramChannel, DatagramChannelEvents } from '../relay/datagram-channel.js';
import { statusForError } from '../relay/forwarder.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import type { AppProfile } from './app-identify.js';
import type { AppRule } from './rules.js';
import { parseUdpDatagram, Socks5Error, type ReplyCode } from './socks5-parser.js';
import { encodeUdpDatagram, type HostPort } from './socks5-encode.js';

export interface OutboundRequest {
  host: string;
  port: number;
  app: AppProfile;
  rule: AppRule;
}

/** The app rule's two sliders, as the session's scheduler takes them (core/sched). */
export interface SliderPolicy {
  lossVsThroughput?: number;
  latencyVsThroughput?: number;
}

/** Handle on a session-layer session whose rule may change while it is open. */
export interface Tunable {
  readonly priorities: Objective[];
  /** Applies from the session's next packet (core/session Session.setPolicy). */
  setPolicy(priorities: Objective[], policy?: SliderPolicy): void;
}

export function slidersOf(rule: AppRule): SliderPolicy {
  return { lossVsThroughput: rule.lossVsThroughput, latencyVsThroughput: rule.latencyVsThroughput };
}

export type ConnectOutcome =
  | {
      ok: true;
      stream: Duplex;
      /** BND.ADDR/BND.PORT for the SOCKS reply. */
      bound: HostPort;
      /** What carries it: "relay", "bypass", or "direct:<uplink>". */
      via: string;
      session?: Tunable;
    }
  | { ok: false; reply: ReplyCode; reason: string };

export type DatagramOutcome =
  | { ok: true; channel: DatagramChannel; via: string; session?: Tunable }
  | { ok: false; reply: ReplyCode; reason: string };

export interface Outbound {
  readonly kind: 'relay' | 'direct' | 'bypass';
  connect(request: OutboundRequest): Promise<ConnectOutcome>;
  /** A channel of RFC 1928 §7 datagrams (header included) both ways. */
  datagrams(request: { app: AppProfile; rule: AppRule }): Promise<DatagramOutcome>;
  close(): void;
}

/** Plain TCP connect, optionally from a local address; rejects with the socket error. */
export function plainConnect(
  host: string,
  port: number,
  localAddress: string | undefined,
  timeoutMs: number,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' }),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export function failure(err: unknown, what: string): ConnectOutcome & { ok: false } {
  return {
    ok: false,
    reply: statusForError(err) as ReplyCode,
    reason: `${what}: ${err instanceof Error ? err.message : String(err)}`,
  };
}

/**
 * RFC 1928 §7 datagrams sent from this host: the header names the destination (a
 * name is resolved here), replies come back with the sender in the header. Used by
 * bypass (OS default route) and direct mode (bound to one uplink's address).
 */
export class LocalDatagramChannel
  extends EventEmitter<DatagramChannelEvents>
  implements DatagramChannel
{
  private readonly sockets = new Map<4 | 6, dgram.Socket>();
  private closed_ = false;
  private dropped_ = 0;
  private readonly names = new Map<string, { address: string; until: number }>();

  constructor(
    private readonly localAddress: string | undefined,
    private readonly log: Logger = createLogger(),
  ) {
    super();
  }

  get closed(): boolean {
    return this.closed_;
  }

  get dropped(): number {
    return this.dropped_;
  }

  /** What one UDP datagram can hold (65,507 bytes of data) plus the largest RFC 1928 header. */
  get maxDatagram(): number {
    return 65_507 + 262;
  }

  private socket(family: 4 | 6): dgram.Socket {
    let s = this.sockets.get(family);
    if (s !== undefined) return s;
    s = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    s.on('message', (msg, rinfo) => {
      if (!this.closed_)
        this.emit('message', encodeUdpDatagram({ host: rinfo.address, port: rinfo.port }, msg));
    });
    s.on('error', (err) => {
      this.dropped_++;
      this.log.info('udp socket error', errorFields(err));
    });
    const bindTo =
      this.localAddress !== undefined && net.isIP(this.localAddress) === family
        ? this.localAddress
        : undefined;
    s.bind({ port: 0, address: bindTo });
    this.sockets.set(family, s);
    return s;
  }

  send(datagram: Buffer): boolean {
    if (this.closed_) {
      this.dropped_++;
      return false;
    }
    let parsed;
    try {
      parsed = parseUdpDatagram(datagram);
    } catch (err) {
      if (!(err instanceof Socks5Error)) throw err;
      this.dropped_++;
      return false;
    }
    if (parsed.frag !== 0) {
      this.dropped_++;
      return false;
    }
    const { host, port } = parsed.address;
    const data = Buffer.from(parsed.data);
    const out = (address: string): void => {
      if (this.closed_) return;
      this.socket(net.isIPv6(address) ? 6 : 4).send(data, port, address, (err) => {
        if (err !== null && err !== undefined) {
          this.dropped_++;
          this.log.info('udp send failed', { address, ...errorFields(err) });
        }
      });
    };
    if (net.isIP(host) !== 0) {
      out(host);
      return true;
    }
    const cached = this.names.get(host);
    if (cached !== undefined && cached.until > Date.now()) {
      out(cached.address);
      return true;
    }
    lookup(host).then(
      (r) => {
        this.names.set(host, { address: r.address, until: Date.now() + 30_000 });
        out(r.address);
      },
      (err: unknown) => {
        this.dropped_++;
        this.log.info('udp destination does not resolve', { host, ...errorFields(err) });
      },
    );
    return true;
  }

  close(): void {
    if (this.closed_) return;
    this.closed_ = true;
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
    this.emit('close');
  }
}

/** Bypass (DESIGN §1): plain sockets on the OS's default route; no session opened. */
export class BypassOutbound implements Outbound {
  readonly kind = 'bypass' as const;
  constructor(
    private readonly connectTimeoutMs = 10_000,
    private readonly log: Logger = createLogger(),
  ) {}

  async connect(request: OutboundRequest): Promise<ConnectOutcome> {
    try {
      const socket = await plainConnect(
        request.host,
        request.port,
        undefined,
        this.connectTimeoutMs,
      );
      return {
        ok: true,
        stream: socket,
        bound: { host: socket.localAddress ?? '0.0.0.0', port: socket.localPort ?? 0 },
        via: 'bypass',
      };
    } catch (err) {
      return failure(err, `connect to ${request.host}:${request.port}`);
    }
  }

  datagrams(): Promise<DatagramOutcome> {
    return Promise.resolve({
      ok: true,
      channel: new LocalDatagramChannel(undefined, this.log),
      via: 'bypass',
    });
  }

  close(): void {
    // Nothing shared to close: each connection owns its socket.
  }
}
