/**
 * Direct mode (DESIGN §1, paper §III-B fallback): no relay, so no striping; each new
 * connection goes out on the one uplink best for its app's first objective, bound to
 * that uplink's address. An uplink whose connect fails is left at once: it is marked
 * failed for a while, the same connection is retried on the next uplink, and new
 * connections avoid it until the mark expires.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Objective } from '../wire/frame.js';
import type { Uplink, UplinkKind } from '../iface/uplink.js';
import { systemClock, type Clock } from '../util/clock.js';
import { createLogger, type Logger } from '../util/log.js';
import {
  failure,
  LocalDatagramChannel,
  plainConnect,
  type ConnectOutcome,
  type DatagramOutcome,
  type Outbound,
  type OutboundRequest,
} from './outbound.js';
import { Reply } from './socks5-parser.js';

/** One uplink to leave on. */
export interface UplinkChoice {
  address: string;
  name: string;
}

/**
 * Picks the uplink for a new connection. Narrow on purpose: the scoreboard of measured
 * paths (core/paths/scoreboard.ts, in progress) will implement it too.
 */
export interface UplinkChooser {
  choose(objective: Objective, exclude?: ReadonlySet<string>): UplinkChoice | undefined;
}

/** A fixed list, best first (tests, and `braid proxy --via` without a relay). */
export class StaticUplinkChooser implements UplinkChooser {
  constructor(private readonly uplinks: readonly UplinkChoice[]) {}
  choose(_objective: Objective, exclude?: ReadonlySet<string>): UplinkChoice | undefined {
    return this.uplinks.find((u) => exclude?.has(u.name) !== true);
  }
}

/**
 * Kind order per objective until measurements exist: a wired link beats Wi-Fi on
 * every objective, and cellular comes last (metered, and the most variable in delay).
 */
const KIND_RANK: Record<Objective, UplinkKind[]> = {
  throughput: ['ethernet', 'wifi', 'other', 'cellular', 'virtual'],
  latency: ['ethernet', 'wifi', 'other', 'cellular', 'virtual'],
  jitter: ['ethernet', 'wifi', 'other', 'cellular', 'virtual'],
  loss: ['ethernet', 'wifi', 'other', 'cellular', 'virtual'],
};

/** A chooser over the interface watcher's snapshot (core/iface). */
export class InterfaceUplinkChooser implements UplinkChooser {
  constructor(private readonly snapshot: () => readonly Uplink[]) {}

  choose(objective: Objective, exclude?: ReadonlySet<string>): UplinkChoice | undefined {
    const rank = KIND_RANK[objective];
    const usable = this.snapshot().filter(
      (u) =>
        u.up &&
        !u.ignored &&
        u.gatewayReachable !== false &&
        exclude?.has(u.name) !== true &&
        u.addresses.some((a) => !isLinkLocal(a.address)),
    );
    usable.sort(
      (a, b) =>
        rankOf(rank, a.kind) - rankOf(rank, b.kind) ||
        // With a known-good gateway first: an unknown one may be a captive portal.
        Number(b.gatewayReachable === true) - Number(a.gatewayReachable === true),
    );
    const best = usable[0];
    if (best === undefined) return undefined;
    const address =
      best.addresses.find((a) => a.family === 4 && !isLinkLocal(a.address)) ??
      best.addresses.find((a) => !isLinkLocal(a.address))!;
    return { address: address.address, name: best.name };
  }
}

function rankOf(rank: UplinkKind[], kind: UplinkKind): number {
  const i = rank.indexOf(kind);
  return i < 0 ? rank.length : i;
}

function isLinkLocal(address: string): boolean {
  return address.startsWith('169.254.') || /^fe[89ab]/i.test(address);
}

/** Connect errors that say the uplink is broken (not that the destination said no). */
const UPLINK_ERRORS = new Set([
  'EADDRNOTAVAIL',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'EINVAL',
  'EAFNOSUPPORT',
]);

export interface DirectOutboundOptions {
  chooser: UplinkChooser;
  /** How long a failed uplink is avoided (default 30 s). */
  failedForMs?: number;
  connectTimeoutMs?: number;
  clock?: Clock;
  logger?: Logger;
}

export class DirectOutbound implements Outbound {
  readonly kind = 'direct' as const;
  private readonly failedUntil = new Map<string, number>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly failedForMs: number;
  private readonly connectTimeoutMs: number;

  constructor(private readonly options: DirectOutboundOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = (options.logger ?? createLogger()).child({ component: 'direct' });
    this.failedForMs = options.failedForMs ?? 30_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  /** Uplinks avoided now (name → ms left). */
  failed(): Map<string, number> {
    const now = this.clock.now();
    const out = new Map<string, number>();
    for (const [name, until] of this.failedUntil) if (until > now) out.set(name, until - now);
    return out;
  }

  markFailed(name: string, reason: string): void {
    this.failedUntil.set(name, this.clock.now() + this.failedForMs);
    this.log.warn('uplink failed; new connections avoid it', {
      uplink: name,
      reason,
      forMs: this.failedForMs,
    });
  }

  private excluded(): Set<string> {
    return new Set(this.failed().keys());
  }

  async connect(request: OutboundRequest): Promise<ConnectOutcome> {
    const objective = request.rule.priorities[0] ?? 'loss';
    let address: string;
    try {
      address = net.isIP(request.host) !== 0 ? request.host : (await lookup(request.host)).address;
    } catch (err) {
      return failure(err, `cannot resolve ${request.host}`);
    }
    const family = net.isIP(address);
    const exclude = this.excluded();
    let lastError: unknown;
    for (let attempt = 0; attempt < 8; attempt++) {
      const uplink = this.options.chooser.choose(objective, exclude);
      if (uplink === undefined) break;
      exclude.add(uplink.name);
      if (net.isIP(uplink.address) !== family) continue;
      try {
        const socket = await plainConnect(
          address,
          request.port,
          uplink.address,
          this.connectTimeoutMs,
        );
        return {
          ok: true,
          stream: socket,
          bound: { host: socket.localAddress ?? uplink.address, port: socket.localPort ?? 0 },
          via: `direct:${uplink.name}`,
        };
      } catch (err) {
        lastError = err;
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && UPLINK_ERRORS.has(code)) {
          this.markFailed(uplink.name, code);
          continue;
        }
        // The destination answered (refused, reset): the uplink works, the answer stands.
        return failure(err, `connect to ${request.host}:${request.port} via ${uplink.name}`);
      }
    }
    if (lastError !== undefined)
      return failure(lastError, `connect to ${request.host}:${request.port}`);
    return { ok: false, reply: Reply.networkUnreachable, reason: 'no usable uplink' };
  }

  datagrams(request: { rule: { priorities: Objective[] } }): Promise<DatagramOutcome> {
    const uplink = this.options.chooser.choose(
      request.rule.priorities[0] ?? 'loss',
      this.excluded(),
    );
    if (uplink === undefined)
      return Promise.resolve({
        ok: false,
        reply: Reply.networkUnreachable,
        reason: 'no usable uplink',
      });
    return Promise.resolve({
      ok: true,
      channel: new LocalDatagramChannel(uplink.address, this.log),
      via: `direct:${uplink.name}`,
    });
  }

  close(): void {
    // Nothing shared to close: each connection owns its socket.
  }
}
