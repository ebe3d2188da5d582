/**
 * The local SOCKS5 proxy (DESIGN §1; RFC 1928, RFC 1929): how unmodified apps reach
 * Braid. Per connection: handshake (socks5-parser.ts), identify the app from the
 * socket's owner (app-identify.ts), look up its rule (rules.ts), then CONNECT or UDP
 * ASSOCIATE through the outbound (relay or direct), or the bypass one. The SOCKS reply
 * goes out only once the outbound knows the outcome, with the RFC 1928 §6 code for it.
 * Bad input is answered with the proper code and a log line; it never throws out.
 */
import dgram from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import type { DatagramChannel } from '../relay/datagram-channel.js';
import {
  createAppIdentifier,
  UNKNOWN_APP,
  type AppIdentifier,
  type AppProfile,
} from './app-identify.js';
import { BypassOutbound, slidersOf, type Outbound, type Tunable } from './outbound.js';
import { RuleBook, type AppRule } from './rules.js';
import {
  encodeAuthStatus,
  encodeMethodSelection,
  encodeReply,
  type HostPort,
} from './socks5-encode.js';
import {
  METHOD_NONE_ACCEPTABLE,
  parseUdpDatagram,
  Reply,
  Socks5Error,
  Socks5Parser,
  type ReplyCode,
  type Socks5Address,
} from './socks5-parser.js';

export interface SocksServerOptions {
  /** Default 127.0.0.1: the proxy is for this machine's apps only. */
  host?: string;
  /** Default 1080; 0 picks a free port. */
  port?: number;
  /** RFC 1929 credentials; without them, no authentication (loopback only). */
  auth?: { username: string; password: string };
  /**
   * Local users (uids) the proxy serves besides its own and root's (SECURITY.md,
   * threat 3): 127.0.0.1 is shared by every account, so by default a connection whose
   * socket belongs to another uid gets X'FF' (no acceptable methods) and a log line.
   * Root is let in because it can read this user's keys and trace this process
   * anyway. 'any' turns the check off. Where the owner cannot be read (a client on
   * another machine; macOS and Windows, which have no /proc/net/tcp) credentials
   * (`auth`) are required instead: without them and without 'any', `listen` refuses
   * to start on such a platform, and such a connection is refused on Linux.
   */
  allowUids?: readonly number[] | 'any';
  /** Through the relay, or direct mode. */
  outbound: Outbound;
  /** For bypassed apps; default plain sockets on the OS default route. */
  bypass?: Outbound;
  rules?: RuleBook;
  identifier?: AppIdentifier;
  /** Everything bypasses the session layer (the tray's global switch). */
  globalBypass?: boolean;
  /** A client that has not finished its handshake by then is dropped (default 10 s). */
  handshakeTimeoutMs?: number;
  logger?: Logger;
}

/** One proxied connection, for the Sessions view and tests. */
export interface ProxiedConnection {
  id: number;
  app: AppProfile;
  command: 'connect' | 'udp-associate';
  /** "host:port" for CONNECT, "udp" for an association. */
  target: string;
  /** "relay", "bypass" or "direct:<uplink>". */
  via: string;
  /** The session-layer session, when there is one (priorities tunable while open). */
  session?: Tunable;
}

export interface SocksServerStats {
  connections: number;
  bypassed: number;
  /** Requests answered with a failure code (outbound refused or failed). */
  failed: number;
  /** Handshakes that were malformed or unsupported. */
  malformed: number;
  udpDatagramsUp: number;
  udpDatagramsDown: number;
  /** RFC 1928 §7: FRAG != 0 is not reassembled; such datagrams are dropped. */
  udpFragmentsDropped: number;
  /** From an address other than the association's client, or malformed. */
  udpDatagramsRefused: number;
  /**
   * Larger than the association carries (a message session's one-packet limit, about
   * 1.2-1.4 kB on a UDP path): dropped with a log line, as a link of that MTU would.
   */
  udpDatagramsTooLarge: number;
  /** Connections refused because their socket belongs to another local user (or to no one known). */
  refusedUsers: number;
}

export interface SocksServerEvents {
  connection: [ProxiedConnection];
  closed: [ProxiedConnection];
}

export class SocksServer extends EventEmitter<SocksServerEvents> {
  readonly stats: SocksServerStats = {
    connections: 0,
    bypassed: 0,
    failed: 0,
    malformed: 0,
    udpDatagramsUp: 0,
    udpDatagramsDown: 0,
    udpFragmentsDropped: 0,
    udpDatagramsRefused: 0,
    udpDatagramsTooLarge: 0,
    refusedUsers: 0,
  };
  private readonly open = new Map<number, ProxiedConnection>();
  private readonly sockets = new Set<net.Socket>();
  private nextId = 1;
  private globalBypass: boolean;
  private readonly log: Logger;
  private readonly rules: RuleBook;
  private readonly identifier: AppIdentifier;
  private readonly bypass: Outbound;
  /** The uids served; undefined when the check is off ('any'). */
  private readonly uids: ReadonlySet<number> | undefined;

  private constructor(
    private readonly server: net.Server,
    private readonly options: SocksServerOptions,
  ) {
    super();
    this.log = (options.logger ?? createLogger()).child({ component: 'socks' });
    this.rules = options.rules ?? new RuleBook({ logger: this.log });
    this.identifier = options.identifier ?? createAppIdentifier({ logger: this.log });
    this.bypass = options.bypass ?? new BypassOutbound(10_000, this.log);
    this.globalBypass = options.globalBypass ?? false;
    this.uids = servedUids(options.allowUids);
    server.on('connection', (socket) => this.onConnection(socket));
    // A rule changed: open sessions of that app take what can change while open.
    this.rules.on('change', (appId) => this.retune(appId));
  }

  static async listen(options: SocksServerOptions): Promise<SocksServer> {
    const canTellUsers =
      servedUids(options.allowUids) === undefined ||
      options.auth !== undefined ||
      (options.identifier ?? createAppIdentifier({ logger: options.logger })).ownerUid !==
        undefined;
    if (!canTellUsers)
      throw new BraidError(
        'BRAID_ERR_USAGE',
        `on ${process.platform} the proxy cannot tell which local user a connection comes from; set credentials (--user/--password) or allow any local user (--allow-any-local-user)`,
        { value: process.platform },
      );
    // allowHalfOpen: a client that shuts down its sending side still gets the answer (TCP half-close).
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    server.listen(options.port ?? 1080, options.host ?? '127.0.0.1');
    await once(server, 'listening');
    const s = new SocksServer(server, options);
    s.log.info('SOCKS5 proxy listening', { address: `${s.address.address}:${s.address.port}` });
    return s;
  }

  get address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  get port(): number {
    return this.address.port;
  }

  get ruleBook(): RuleBook {
    return this.rules;
  }

  connections(): ProxiedConnection[] {
    return [...this.open.values()];
  }

  setGlobalBypass(on: boolean): void {
    this.globalBypass = on;
    this.log.info('global bypass', { on });
  }

  private retune(appId: string): void {
    for (const c of this.open.values()) {
      if (c.app.appId !== appId || c.session === undefined) continue;
      // Priorities and sliders apply to an open session from its next packet, on this
      // side and (POLICY frame) on the relay's, which sends the downloads; semantics and
      // bypass cannot change under an open connection and apply from the app's next one.
      const rule = this.rules.ruleFor(c.app);
      c.session.setPolicy([...rule.priorities], slidersOf(rule));
    }
  }

  private onConnection(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => this.log.debug('client socket error', errorFields(err)));
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const timer = setTimeout(() => {
      this.log.info('SOCKS handshake timed out', { peer });
      socket.destroy();
    }, this.options.handshakeTimeoutMs ?? 10_000);
    socket.once('close', () => clearTimeout(timer));
    if (this.uids === undefined) {
      this.handshake(socket, peer, timer);
      return;
    }
    // Until the owner is known nothing is read: what the client sends waits in the socket.
    this.checkUser(socket)
      .then((refusal) => {
        if (socket.destroyed) return;
        if (refusal === undefined) {
          this.handshake(socket, peer, timer);
          return;
        }
        clearTimeout(timer);
        this.stats.refusedUsers++;
        this.log.warn('SOCKS connection refused: another local user', { peer, ...refusal });
        // RFC 1928 §3: X'FF', no acceptable methods; the client must close.
        socket.end(encodeMethodSelection(METHOD_NONE_ACCEPTABLE));
      })
      .catch((err: unknown) => {
        this.log.error('local user check failed', { peer, ...errorFields(err) });
        socket.destroy();
      });
  }

  /**
   * Why this connection's local user may not use the proxy, or undefined when it may:
   * its socket's owner uid is served, or the owner cannot be read and credentials
   * stand in for the check.
   */
  private async checkUser(
    socket: net.Socket,
  ): Promise<{ uid?: number; reason: string } | undefined> {
    const uids = this.uids!;
    const uid =
      socket.remoteAddress === undefined || socket.remotePort === undefined
        ? undefined
        : await this.identifier.ownerUid?.({
            protocol: 'tcp',
            clientAddress: socket.remoteAddress,
            clientPort: socket.remotePort,
            proxyAddress: socket.localAddress,
            proxyPort: socket.localPort,
          });
    if (uid !== undefined)
      return uids.has(uid) ? undefined : { uid, reason: `uid ${uid} is not served` };
    if (this.options.auth !== undefined) return undefined; // RFC 1929 decides
    return { reason: 'owner of the connection unknown and no credentials configured' };
  }

  private handshake(socket: net.Socket, peer: string, timer: NodeJS.Timeout): void {
    const parser = new Socks5Parser({ requireAuth: this.options.auth !== undefined });
    // The server is half-open for CONNECT's sake; a client that ends before its
    // request is complete will send nothing more, so its socket goes now rather than
    // at the handshake timeout.
    const onEnd = (): void => {
      clearTimeout(timer);
      this.log.debug('client ended during the SOCKS handshake', { peer });
      socket.destroy();
    };
    socket.once('end', onEnd);
    const onData = (chunk: Buffer): void => {
      const { messages, error } = parser.push(chunk);
      for (const m of messages) {
        switch (m.type) {
          case 'greeting':
            socket.write(encodeMethodSelection(m.chosen));
            break;
          case 'auth': {
            const want = this.options.auth!;
            const ok = m.username === want.username && m.password === want.password;
            socket.write(encodeAuthStatus(ok));
            if (!ok) {
              clearTimeout(timer);
              socket.off('data', onData);
              socket.off('end', onEnd);
              this.stats.malformed++;
              this.log.warn('SOCKS authentication failed', { peer, username: m.username });
              socket.end();
              return;
            }
            break;
          }
          case 'request':
            clearTimeout(timer);
            socket.off('data', onData);
            socket.off('end', onEnd);
            socket.pause();
            this.onRequest(socket, m.command, m.address, parser.takeRest()).catch(
              (err: unknown) => {
                this.log.error('SOCKS request failed unexpectedly', { peer, ...errorFields(err) });
                socket.destroy();
              },
            );
            return;
        }
      }
      if (error !== undefined) {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('end', onEnd);
        this.refuseHandshake(socket, peer, error);
      }
    };
    socket.on('data', onData);
  }

  private refuseHandshake(socket: net.Socket, peer: string, err: Socks5Error): void {
    this.stats.malformed++;
    this.log.warn('bad SOCKS handshake', {
      peer,
      stage: err.stage,
      reply: err.reply,
      ...errorFields(err),
    });
    if (err.reply === undefined) socket.destroy();
    else if (err.stage === 'greeting') socket.end(encodeMethodSelection(METHOD_NONE_ACCEPTABLE));
    else if (err.stage === 'auth') socket.end(encodeAuthStatus(false));
    else socket.end(encodeReply(err.reply as ReplyCode));
  }

  private async identify(socket: net.Socket): Promise<AppProfile> {
    if (socket.remoteAddress === undefined || socket.remotePort === undefined) return UNKNOWN_APP;
    return this.identifier.identify({
      protocol: 'tcp',
      clientAddress: socket.remoteAddress,
      clientPort: socket.remotePort,
      proxyAddress: socket.localAddress,
      proxyPort: socket.localPort,
    });
  }

  private async onRequest(
    socket: net.Socket,
    command: 'connect' | 'bind' | 'udp-associate',
    address: Socks5Address,
    early: Buffer,
  ): Promise<void> {
    if (command === 'bind') {
      this.stats.malformed++;
      this.log.warn('SOCKS BIND is not supported', {
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
      });
      socket.end(encodeReply(Reply.commandNotSupported));
      return;
    }
    const app = await this.identify(socket);
    const rule = this.rules.ruleFor(app);
    const bypassed = this.globalBypass || rule.bypass;
    const outbound = bypassed ? this.bypass : this.options.outbound;
    if (socket.destroyed) return;
    if (command === 'connect') await this.connect(socket, address, early, app, rule, outbound);
    else await this.associate(socket, address, app, rule, outbound);
    if (bypassed) this.stats.bypassed++;
  }

  private track(c: Omit<ProxiedConnection, 'id'>, socket: net.Socket): ProxiedConnection {
    const conn: ProxiedConnection = { id: this.nextId++, ...c };
    this.stats.connections++;
    this.open.set(conn.id, conn);
    this.emit('connection', conn);
    socket.once('close', () => {
      this.open.delete(conn.id);
      this.emit('closed', conn);
    });
    return conn;
  }

  private async connect(
    socket: net.Socket,
    address: Socks5Address,
    early: Buffer,
    app: AppProfile,
    rule: AppRule,
    outbound: Outbound,
  ): Promise<void> {
    const target = `${address.type === 'ipv6' ? `[${address.host}]` : address.host}:${address.port}`;
    const log = this.log.child({ app: app.name, target });
    if (address.port === 0) {
      this.stats.failed++;
      log.warn('CONNECT to port 0 refused');
      socket.end(encodeReply(Reply.notAllowed));
      return;
    }
    const outcome = await outbound.connect({ host: address.host, port: address.port, app, rule });
    if (!outcome.ok) {
      this.stats.failed++;
      log.info('CONNECT failed', {
        via: outbound.kind,
        reply: outcome.reply,
        reason: outcome.reason,
      });
      if (!socket.destroyed) socket.end(encodeReply(outcome.reply));
      return;
    }
    if (socket.destroyed) {
      outcome.stream.destroy();
      return;
    }
    log.info('CONNECT', { via: outcome.via, appId: app.appId });
    this.track(
      { app, command: 'connect', target, via: outcome.via, session: outcome.session },
      socket,
    );
    socket.write(encodeReply(Reply.succeeded, safeBound(outcome.bound)));
    if (early.length > 0) outcome.stream.write(early);
    splice(socket, outcome.stream, log);
  }

  private async associate(
    socket: net.Socket,
    requested: Socks5Address,
    app: AppProfile,
    rule: AppRule,
    outbound: Outbound,
  ): Promise<void> {
    const log = this.log.child({ app: app.name, command: 'udp-associate' });
    const outcome = await outbound.datagrams({ app, rule });
    if (!outcome.ok) {
      this.stats.failed++;
      log.info('UDP ASSOCIATE failed', {
        via: outbound.kind,
        reply: outcome.reply,
        reason: outcome.reason,
      });
      if (!socket.destroyed) socket.end(encodeReply(outcome.reply));
      return;
    }
    const channel = outcome.channel;
    const local = socket.localAddress ?? '127.0.0.1';
    const udp = dgram.createSocket(net.isIPv6(local) ? 'udp6' : 'udp4');
    try {
      udp.bind(0, local);
      await once(udp, 'listening');
    } catch (err) {
      channel.close();
      this.stats.failed++;
      log.warn('cannot open the UDP relay socket', errorFields(err));
      socket.end(encodeReply(Reply.generalFailure));
      return;
    }
    if (socket.destroyed) {
      channel.close();
      udp.close();
      return;
    }
    this.track(
      { app, command: 'udp-associate', target: 'udp', via: outcome.via, session: outcome.session },
      socket,
    );
    // Read before relayDatagrams: a client that already ended closes the UDP socket there.
    const bound = udp.address();
    this.relayDatagrams(socket, requested, udp, channel, log);
    if (socket.destroyed) return;
    log.info('UDP ASSOCIATE', { via: outcome.via, bound: `${bound.address}:${bound.port}` });
    socket.write(encodeReply(Reply.succeeded, { host: bound.address, port: bound.port }));
  }

  /**
   * RFC 1928 §7: datagrams from the client (its address is the TCP connection's; the
   * port is the one the request named, or the first datagram's when it named 0) go to
   * the channel; what the channel returns goes to the client. The association ends
   * with the TCP connection.
   */
  private relayDatagrams(
    socket: net.Socket,
    requested: Socks5Address,
    udp: dgram.Socket,
    channel: DatagramChannel,
    log: Logger,
  ): void {
    const clientAddress = unmapped(socket.remoteAddress ?? '');
    let clientPort = requested.port !== 0 ? requested.port : undefined;
    let tooLarge = 0;
    udp.on('message', (msg, rinfo) => {
      if (
        unmapped(rinfo.address) !== clientAddress ||
        (clientPort !== undefined && rinfo.port !== clientPort)
      ) {
        this.stats.udpDatagramsRefused++;
        return;
      }
      clientPort ??= rinfo.port;
      let frag: number;
      try {
        frag = parseUdpDatagram(msg).frag;
      } catch (err) {
        if (!(err instanceof Socks5Error)) throw err;
        this.stats.udpDatagramsRefused++;
        return;
      }
      if (frag !== 0) {
        this.stats.udpFragmentsDropped++;
        if (this.stats.udpFragmentsDropped === 1)
          log.info('fragmented SOCKS UDP datagram dropped (not supported)');
        return;
      }
      if (msg.length > channel.maxDatagram) {
        // A message session carries one packet per datagram; fragmenting is not done
        // here, so the app hears nothing back, as behind a link with that MTU. The log
        // says so once per association, and then every 100th, with the sizes.
        this.stats.udpDatagramsTooLarge++;
        tooLarge++;
        if (tooLarge === 1 || tooLarge % 100 === 0)
          log.warn('SOCKS UDP datagram too large for the association; dropped', {
            bytes: msg.length,
            limit: channel.maxDatagram,
            droppedSoFar: tooLarge,
          });
        return;
      }
      this.stats.udpDatagramsUp++;
      channel.send(msg);
    });
    udp.on('error', (err) => log.info('UDP relay socket error', errorFields(err)));
    let ended = false;
    channel.on('message', (datagram) => {
      // Before the client's first datagram there is nowhere to send; after the end,
      // the socket is closed (send would throw).
      if (clientPort === undefined || ended) return;
      this.stats.udpDatagramsDown++;
      udp.send(datagram, clientPort, clientAddress);
    });
    const end = (): void => {
      if (ended) return;
      ended = true;
      channel.close();
      udp.close();
      // The TCP connection carries nothing after the reply: once either side ends it,
      // the association is over (RFC 1928 §7), so the socket goes at once rather than
      // waiting half-open.
      socket.destroy();
    };
    channel.once('close', end);
    socket.once('close', end);
    socket.once('end', end);
    socket.resume();
    // The client may have ended while the association was being set up: its 'end'
    // came before these listeners, so look at the state too.
    if (socket.readableEnded || socket.destroyed) end();
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.options.outbound.close();
    this.bypass.close();
    await closed;
  }
}

/** The proxy's own uid, root's and the allowed ones; undefined for 'any'. */
function servedUids(allow: SocksServerOptions['allowUids']): ReadonlySet<number> | undefined {
  if (allow === 'any') return undefined;
  // Windows has no uids (nor ownerUid): the set matches nothing there, so credentials decide.
  if (typeof process.getuid !== 'function') return new Set(allow ?? []);
  return new Set([process.getuid(), 0, ...(allow ?? [])]);
}

/** IPv4-mapped IPv6 ("::ffff:127.0.0.1") as the IPv4 address it is. */
function unmapped(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

/** A bound address SOCKS can encode (a relay may report something odd). */
function safeBound(bound: HostPort): HostPort {
  return net.isIP(unmapped(bound.host)) !== 0
    ? { host: unmapped(bound.host), port: bound.port }
    : { host: '0.0.0.0', port: 0 };
}

/**
 * Both directions with TCP half-close: one side's end becomes the other's end (FIN
 * through the session layer); an error on either side destroys both.
 */
export function splice(a: Duplex, b: Duplex, log: Logger): void {
  a.pipe(b);
  b.pipe(a);
  a.once('error', (err) => {
    log.debug('proxied connection: client side failed', errorFields(err));
    b.destroy();
  });
  b.once('error', (err) => {
    log.info('proxied connection: far side failed', errorFields(err));
    a.destroy();
  });
  // A side that closes without an end (destroyed) takes the other with it.
  a.once('close', () => {
    if (!b.destroyed && !a.readableEnded) b.destroy();
  });
  b.once('close', () => {
    if (!a.destroyed && !b.readableEnded) a.destroy();
  });
}
