import { createHash, randomBytes } from 'node:crypto';
import {
  addClientKey,
  loadClientKeys,
  loadOrCreateServerIdentity,
  type ClientKey,
} from '../handshake/identity-store.js';
import { formatInvite } from '../handshake/invite.js';
import type { TransportKind } from '../wire/frame.js';
import { BraidListener } from '../api/listener.js';
import type { BraidStream } from '../api/braid-stream.js';
import type { Config } from '../session/config.js';
import type { Association } from '../session/association.js';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import { DestinationPolicy } from './destination-policy.js';
import { encodeForwardReply, ForwardStatus } from './forward-reply.js';
import { parseForwardTarget } from './forward-target.js';
import {
  forwardTcp,
  forwardUdp,
  forwardUdpStream,
  type ForwardContext,
  type ForwardStats,
} from './forwarder.js';
import { MessageDatagramChannel } from './datagram-channel.js';
import type { BraidMessageSocket } from '../api/message-socket.js';
import { TokenBucket } from './token-bucket.js';

export interface RelayOptions {
  /** Folder for the key, certificate and client keys (created 0700). */
  stateDir: string;
  host: string;
  port: number;
  /** Addresses advertised for data paths (the relay's n addresses); default [host]. */
  addresses?: string[];
  transports?: TransportKind[];
  /** UDP data port (0 = any). Default: `port` when that is fixed, so one number opens the firewall. */
  udpPort?: number;
  /** TCP data port (0 = any). Default: `port` + 1 when `port` is fixed. */
  tcpPort?: number;
  config?: Partial<Config>;
  logger?: Logger;
  /** Where forwarding sessions may go (see destination-policy.ts). Default: public addresses only. */
  forward?: {
    allowPrivate?: boolean;
    /** CIDRs allowed although private, e.g. ["127.0.0.0/8"]. */
    allow?: string[];
    /** Own addresses to refuse; default the relay host's interface addresses. */
    ownAddresses?: string[];
    /** Per destination address tried (default 10 s). */
    connectTimeoutMs?: number;
  };
  /** Per client key (a household's laptops each have one). */
  limits?: RelayLimits;
  /** Host written into invites (the relay's public name); default `host`. */
  publicHost?: string;
}

export interface RelayLimits {
  /** Open sessions per client; further OPENs are refused with a reason (default 512). */
  maxSessions?: number;
  /** Bytes per second per client, both directions together; 0 = unlimited (default). */
  bytesPerSecond?: number;
}

/** Live numbers of one client, for logs and tests. */
export interface RelayClientStats {
  name: string;
  sessions: number;
  refused: number;
  bytesUp: number;
  bytesDown: number;
}

export interface Relay {
  listener: BraidListener;
  fingerprint: string;
  /** Invite for each client key, in the order of the key store. */
  invites: Array<{ name: string; invite: string }>;
  /** Per client key name. */
  clients(): RelayClientStats[];
  /** Sessions open now, all clients. */
  readonly openSessions: number;
  /**
   * Graceful stop (SIGTERM): refuse new sessions at once, let open ones finish for up
   * to `graceMs`, then close everything.
   */
  shutdown(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

interface ClientState {
  stats: RelayClientStats;
  bucket: TokenBucket | undefined;
}

/** The report a sink sends back once the sender ended its stream. */
export interface SinkReport {
  bytes: number;
  sha256: string;
  ms: number;
}

/**
 * `braid relay`: the far end of associations, one per client key. Target
 * "tcp:host:port" and "udp" forward to the Internet (forwarder.ts), within the
 * destination policy and the client's limits. Targets that end at the relay itself,
 * for tests, the benchmark and the demo: "sink" counts and hashes what arrives and
 * answers with a SinkReport line; "echo" sends everything back; "source:<ms>" sends
 * pseudo-random bytes for that many milliseconds. Other targets are reset with a
 * clear reason.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const log = (options.logger ?? createLogger()).child({ component: 'relay' });
  const identity = loadOrCreateServerIdentity(options.stateDir);
  if (identity.created)
    log.info('created relay identity', {
      dir: options.stateDir,
      fingerprint: identity.fingerprint,
    });
  let clients = loadClientKeys(options.stateDir);
  if (clients.length === 0) {
    addClientKey(options.stateDir, 'default');
    clients = loadClientKeys(options.stateDir);
  }
  const listener = await BraidListener.listen({
    host: options.host,
    port: options.port,
    addresses: options.addresses,
    transports: options.transports,
    udpPort: options.udpPort ?? options.port,
    tcpPort:
      options.tcpPort ?? (options.port === 0 || options.port === 65535 ? 0 : options.port + 1),
    identity,
    // Read at each HELLO so that keys added while running take effect.
    clients: (): ClientKey[] => loadClientKeys(options.stateDir),
    config: options.config,
    logger: log,
  });
  const maxSessions = options.limits?.maxSessions ?? 512;
  const rate = options.limits?.bytesPerSecond ?? 0;
  const policy = new DestinationPolicy(options.forward ?? {});
  const connectTimeoutMs = options.forward?.connectTimeoutMs ?? 10_000;
  const byClient = new Map<string, ClientState>();
  const clientOf = new WeakMap<Association, ClientState>();
  const open = new Set<BraidStream | BraidMessageSocket>();
  let draining = false;
  let drained: (() => void) | undefined;
  listener.on('association', (association, est) => {
    const name = est.clientName ?? 'unknown';
    let state = byClient.get(name);
    if (state === undefined) {
      state = {
        stats: { name, sessions: 0, refused: 0, bytesUp: 0, bytesDown: 0 },
        // One second of burst: enough for a TCP window, short enough to hold the rate.
        bucket: rate > 0 ? new TokenBucket(rate, Math.max(rate, 64 * 1024)) : undefined,
      };
      byClient.set(name, state);
    }
    clientOf.set(association, state);
    log.info('client associated', { client: name, peer: est.peer });
  });
  /** Admission, accounting and logging shared by byte-stream and message sessions. */
  const admit = (
    session: BraidStream | BraidMessageSocket,
    association: Association,
    serve: (ctx: ForwardContext, stats: ForwardStats, slog: Logger) => void,
    refuse: (reason: string) => void,
  ): void => {
    const target = session.session.target;
    const client = clientOf.get(association);
    const slog = log.child({
      client: client?.stats.name ?? 'unknown',
      session: session.sessionId,
    });
    const refusal = draining
      ? 'relay is shutting down'
      : client === undefined
        ? 'association has no client'
        : client.stats.sessions >= maxSessions
          ? `client ${client.stats.name} has ${client.stats.sessions} sessions open (limit ${maxSessions})`
          : undefined;
    if (refusal !== undefined || client === undefined) {
      if (client !== undefined) client.stats.refused++;
      slog.warn('session refused', { target, reason: refusal });
      refuse(refusal ?? 'refused');
      return;
    }
    client.stats.sessions++;
    open.add(session);
    const stats: ForwardStats = { up: 0, down: 0, dropped: 0 };
    const started = performance.now();
    session.once('close', () => {
      client.stats.sessions--;
      client.stats.bytesUp += stats.up;
      client.stats.bytesDown += stats.down;
      open.delete(session);
      slog.info('session ended', {
        target,
        up: stats.up,
        down: stats.down,
        dropped: stats.dropped,
        ms: Math.round(performance.now() - started),
      });
      if (draining && open.size === 0) drained?.();
    });
    serve({ policy, connectTimeoutMs, bucket: client.bucket, log: slog }, stats, slog);
  };
  listener.on('stream', (stream, association) =>
    admit(
      stream,
      association,
      (ctx, stats, slog) => serveStream(stream, slog, ctx, stats),
      (reason) => refuseStream(stream, reason),
    ),
  );
  listener.on('messages', (socket, association) =>
    admit(
      socket,
      association,
      (ctx, stats, slog) => serveMessages(socket, slog, ctx, stats),
      (reason) => socket.destroy(new BraidError('BRAID_ERR_RELAY_REFUSED', reason)),
    ),
  );
  const host = options.publicHost ?? options.host;
  const invites = clients.map((c) => ({
    name: c.name,
    invite: formatInvite({
      host,
      port: listener.port,
      fingerprint: identity.fingerprint,
      keyId: c.keyId,
      key: c.key,
    }),
  }));
  return {
    listener,
    fingerprint: identity.fingerprint,
    invites,
    clients: () => [...byClient.values()].map((c) => ({ ...c.stats })),
    get openSessions() {
      return open.size;
    },
    shutdown: async (graceMs: number) => {
      draining = true;
      // A client that associates now is told so (and tries again later); open
      // associations keep their sessions, and their paths may still join, until drained.
      listener.stopAccepting('relay is shutting down');
      log.info('shutting down', { openSessions: open.size, graceMs });
      if (open.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      if (open.size > 0)
        log.warn('grace period over; closing open sessions', { openSessions: open.size });
      await listener.close();
    },
    close: () => listener.close(),
  };
}

/**
 * A forwarding session gets a ForwardReply it can map to a SOCKS code; any other
 * session gets a reset whose reason travels in the RESET frame.
 */
function refuseStream(stream: BraidStream, reason: string): void {
  stream.on('error', () => undefined);
  if (parseForwardTarget(stream.session.target) !== undefined) {
    stream.resume();
    stream.end(encodeForwardReply({ status: ForwardStatus.notAllowed, text: reason }));
    return;
  }
  stream.destroy(new BraidError('BRAID_ERR_RELAY_REFUSED', reason));
}

/** The invite of one client key, as `braid relay add-client` prints it. */
export function clientInvite(stateDir: string, name: string, host: string, port: number): string {
  const identity = loadOrCreateServerIdentity(stateDir);
  const client = loadClientKeys(stateDir).find((c) => c.name === name);
  if (client === undefined)
    throw new BraidError('BRAID_ERR_CONFIG', 'no client key with that name', { value: name });
  return formatInvite({
    host,
    port,
    fingerprint: identity.fingerprint,
    keyId: client.keyId,
    key: client.key,
  });
}

/** Resolves on 'drain' or 'close', removing both listeners (a race of two once() calls leaks the loser). */
function drainOrClose(stream: BraidStream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** Download benchmark: pseudo-random bytes for `ms` milliseconds, then end of stream. */
async function sendFor(stream: BraidStream, ms: number): Promise<void> {
  const block = randomBytes(64 * 1024);
  const until = performance.now() + ms;
  // Whatever the peer sends (nothing, normally) is read and dropped.
  stream.resume();
  while (performance.now() < until && !stream.destroyed) {
    if (!stream.write(block)) await drainOrClose(stream);
  }
  if (!stream.destroyed) stream.end();
}

/**
 * Message sessions: "udp" forwards datagrams under the session's semantics; "echo"
 * sends each message back (tests). Anything else is reset with the reason.
 */
function serveMessages(
  socket: BraidMessageSocket,
  log: Logger,
  ctx: ForwardContext,
  stats: ForwardStats,
): void {
  const target = socket.session.target;
  socket.on('error', (err) => log.info('message session ended with error', errorFields(err)));
  if (target === 'udp') {
    forwardUdp(new MessageDatagramChannel(socket, log), ctx, stats);
    return;
  }
  if (target === 'echo') {
    socket.on('message', (m) => socket.send(m));
    socket.on('end', () => socket.end());
    return;
  }
  socket.destroy(
    new BraidError('BRAID_ERR_RELAY_REFUSED', 'unknown target for a message session (udp, echo)', {
      value: target,
    }),
  );
}

function serveStream(
  stream: BraidStream,
  log: Logger,
  ctx: ForwardContext,
  stats: ForwardStats,
): void {
  const target = stream.session.target;
  stream.on('error', (err) => log.info('session ended with error', errorFields(err)));
  const forward = parseForwardTarget(target);
  if (forward?.kind === 'tcp') {
    forwardTcp(stream, forward.host, forward.port, ctx, stats).catch((err: unknown) => {
      log.warn('forwarding failed', errorFields(err));
      stream.destroy(err instanceof Error ? err : undefined);
    });
    return;
  }
  if (forward?.kind === 'udp') {
    forwardUdpStream(stream, ctx, stats);
    return;
  }
  if (target === 'sink') {
    const started = performance.now();
    const hash = createHash('sha256');
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    stream.on('end', () => {
      const report: SinkReport = {
        bytes,
        sha256: hash.digest('hex'),
        ms: performance.now() - started,
      };
      stream.end(JSON.stringify(report) + '\n');
    });
    return;
  }
  if (target === 'echo') {
    stream.pipe(stream);
    return;
  }
  const source = /^source:(\d{1,7})$/.exec(target);
  if (source !== null) {
    sendFor(stream, Number(source[1])).catch((err: unknown) =>
      log.info('source session ended early', { session: stream.sessionId, ...errorFields(err) }),
    );
    return;
  }
  stream.destroy(
    new BraidError(
      'BRAID_ERR_RELAY_REFUSED',
      'unknown target (tcp:host:port, udp, sink, echo, source:<ms>)',
      {
        value: target,
      },
    ),
  );
}
