import { PathMetricsCache } from '../paths/path-metrics-cache.js';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ControlServer } from '../handshake/control.js';
import type { EstablishedAssociation } from '../handshake/control.js';
import type { ClientKey } from '../handshake/identity-store.js';
import { UdpEndpoint } from '../transport/udp-endpoint.js';
import { TcpListener } from '../transport/tcp-listener.js';
import type { Subflow } from '../transport/subflow.js';
import { decodeHeader } from '../wire/packet-header.js';
import type { TransportKind } from '../wire/frame.js';
import { Association } from '../session/association.js';
import { verifyConfig, type Config } from '../session/config.js';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import { BraidStream } from './braid-stream.js';
import { BraidMessageSocket } from './message-socket.js';

export interface ListenOptions {
  /** Address the TLS control port binds to. */
  host: string;
  /** TLS control port (0 = any). UDP data uses the same number; TCP data the next one unless given. */
  port: number;
  /** Addresses advertised to clients and bound for data (the server's n addresses). Default: [host]. */
  addresses?: string[];
  udpPort?: number;
  tcpPort?: number;
  transports?: TransportKind[];
  identity: { keyPem: string; certPem: string };
  clients: () => ClientKey[];
  config?: Partial<Config>;
  logger?: Logger;
}

export interface ListenerEvents {
  /** A reliable-ordered session the peer opened. */
  stream: [BraidStream, Association];
  /** A message session (the three other semantics) the peer opened. */
  messages: [BraidMessageSocket, Association];
  association: [Association, EstablishedAssociation];
  rejected: [BraidError, string];
}

/** Drop counters for traffic that never reached an association. */
export interface ListenerStats {
  unknownAssociation: number;
  badHeader: number;
  wrongSource: number;
  joinsRefused: number;
  /** Associations turned away after stopAccepting() (graceful shutdown). */
  associationsRefused: number;
}

/**
 * The accepting side of Braid (DESIGN §3; `session bind` of paper Table I): the TLS
 * control port, UDP endpoints on each advertised address and a TCP data listener.
 * Data packets are routed to their association by the id in the clear header; a
 * packet that does not authenticate, or a JOIN that does not verify, is dropped
 * without reply.
 */
export class BraidListener extends EventEmitter<ListenerEvents> {
  readonly associations = new Map<string, Association>();
  readonly stats: ListenerStats = {
    unknownAssociation: 0,
    badHeader: 0,
    wrongSource: 0,
    joinsRefused: 0,
    associationsRefused: 0,
  };
  private readonly log: Logger;
  private closed = false;
  /** Set by stopAccepting(): why new associations are turned away. */
  private refusal: string | undefined;
  /**
   * What ended paths learned, for new paths from the same client address (RFC 9040
   * temporal sharing, path-metrics-cache.ts): the next download to the same uplink need
   * not find the bottleneck by overflowing it again.
   */
  readonly pathMetrics = new PathMetricsCache();

  private constructor(
    private readonly control: ControlServer,
    private readonly udp: UdpEndpoint[],
    private readonly tcp: TcpListener | undefined,
    readonly controlAddress: AddressInfo,
    private readonly config: Config,
    logger: Logger,
  ) {
    super();
    this.log = logger;
    control.on('association', (est: EstablishedAssociation) => this.onAssociation(est));
    control.on('rejected', (err: BraidError, remote: string) => {
      this.log.warn('control connection rejected', { remote, ...errorFields(err) });
      this.emit('rejected', err, remote);
    });
    for (const endpoint of udp) {
      endpoint.onDatagram = (packet, address, port) =>
        this.onDatagram(endpoint, packet, address, port);
    }
    if (tcp !== undefined) tcp.onSubflow = (subflow) => this.onTcpSubflow(subflow);
  }

  static async listen(options: ListenOptions): Promise<BraidListener> {
    const config = verifyConfig(options.config);
    const logger = (options.logger ?? createLogger()).child({ component: 'listener' });
    const addresses = options.addresses ?? [options.host];
    const transports = options.transports ?? ['udp', 'tcp'];
    // Bind data sockets first so the ports we advertise are real.
    const udp: UdpEndpoint[] = [];
    let udpPort = options.udpPort ?? 0;
    if (transports.includes('udp')) {
      for (const address of addresses) {
        const endpoint = await UdpEndpoint.bind(address, udpPort);
        udpPort = endpoint.port;
        udp.push(endpoint);
      }
    }
    let tcp: TcpListener | undefined;
    if (transports.includes('tcp')) {
      tcp = await TcpListener.listen(
        addresses.length === 1 ? addresses[0]! : '::',
        options.tcpPort ?? 0,
      );
    }
    const control = new ControlServer({
      identity: options.identity,
      clients: options.clients,
      addresses,
      udpPort,
      tcpPort: tcp?.port ?? 0,
      transports,
      logger,
    });
    const address = await control.listen(options.port, options.host);
    logger.info('listening', {
      control: `${address.address}:${address.port}`,
      udpPort,
      tcpPort: tcp?.port,
    });
    return new BraidListener(control, udp, tcp, address, config, logger);
  }

  get port(): number {
    return this.controlAddress.port;
  }

  /** False once stopAccepting() was called. */
  get accepting(): boolean {
    return this.refusal === undefined;
  }

  /**
   * Graceful shutdown, first step: a client that associates from now on is told
   * `reason` (BRAID_ERR_RELAY_REFUSED) and closed, while open associations go on —
   * their sessions, and paths that join them — until they end or close() is called.
   */
  stopAccepting(reason = 'not accepting new associations'): void {
    if (this.refusal !== undefined) return;
    this.refusal = reason;
    this.log.info('no longer accepting associations', {
      reason,
      open: this.associations.size,
    });
  }

  private onAssociation(est: EstablishedAssociation): void {
    const association = new Association({
      role: 'server',
      secrets: est.secrets,
      config: this.config,
      logger: this.log,
      peer: est.peer,
      pathMetrics: this.pathMetrics,
    });
    if (this.refusal !== undefined) {
      this.stats.associationsRefused++;
      this.log.info('association refused', { peer: est.peer, reason: this.refusal });
      association.once('closed', () => est.control.destroy());
      association.close(new BraidError('BRAID_ERR_RELAY_REFUSED', this.refusal));
      return;
    }
    const key = est.associationId.toString('hex');
    this.associations.set(key, association);
    association.on('session', (session) => {
      const kind = session.isMessage ? 'messages' : 'stream';
      if (this.listenerCount(kind) === 0) {
        // Nobody here serves this kind of session: refuse it rather than let it hang.
        session.abort(
          new BraidError(
            'BRAID_ERR_SESSION_STATE',
            `this peer accepts no ${session.semantics} sessions`,
            {
              value: session.id,
            },
          ),
        );
        return;
      }
      if (session.isMessage) this.emit('messages', new BraidMessageSocket(session), association);
      else this.emit('stream', new BraidStream(session), association);
    });
    association.on('closed', () => est.control.destroy());
    // Still routed to while closing, so that late packets get the close again.
    association.on('released', () => this.associations.delete(key));
    // The association outlives its control connection (DESIGN §3.4); note its loss only.
    est.control.on('close', () => this.log.info('control connection closed', { assoc: key }));
    est.control.on('error', (err: Error) =>
      this.log.info('control connection error', { assoc: key, ...errorFields(err) }),
    );
    this.emit('association', association, est);
  }

  private route(
    packet: Buffer,
  ): { association: Association; header: ReturnType<typeof headerOf> } | undefined {
    const header = headerOf(packet);
    if (header === undefined) {
      this.stats.badHeader++;
      return undefined;
    }
    const association = this.associations.get(
      Buffer.from(header.header.associationId).toString('hex'),
    );
    if (association === undefined) {
      this.stats.unknownAssociation++;
      return undefined;
    }
    return { association, header };
  }

  private onDatagram(endpoint: UdpEndpoint, packet: Buffer, address: string, port: number): void {
    const routed = this.route(packet);
    if (routed === undefined) return;
    const { association, header } = routed;
    const h = header!;
    const path = association.paths.get(h.header.pathId);
    if (path !== undefined) {
      if (
        path.kind !== 'udp' ||
        path.subflow.remoteAddress !== address ||
        path.subflow.remotePort !== port
      ) {
        this.stats.wrongSource++;
        return;
      }
      association.receive(path, packet, h.header, h.length);
      return;
    }
    if (
      !association.acceptJoin(h.header, h.length, packet, () => endpoint.subflowFor(address, port))
    ) {
      this.stats.joinsRefused++;
    }
  }

  private onTcpSubflow(subflow: Subflow): void {
    // The first record must be a verifying JOIN; anything else closes the connection.
    const timer = setTimeout(() => {
      this.stats.joinsRefused++;
      subflow.close();
    }, 5000);
    subflow.onClose = (error) => {
      clearTimeout(timer);
      if (error !== undefined)
        this.log.info('TCP data connection refused', {
          remote: `${subflow.remoteAddress}:${subflow.remotePort}`,
          ...errorFields(error),
        });
    };
    subflow.onPacket = (packet) => {
      clearTimeout(timer);
      const routed = this.route(packet);
      const h = routed?.header;
      if (
        routed === undefined ||
        h === undefined ||
        routed.association.paths.has(h.header.pathId) ||
        !routed.association.acceptJoin(h.header, h.length, packet, () => subflow)
      ) {
        this.stats.joinsRefused++;
        subflow.close();
      }
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const association of [...this.associations.values()]) association.close();
    for (const endpoint of this.udp) endpoint.close();
    await this.tcp?.close();
    await this.control.close();
  }
}

function headerOf(
  packet: Buffer,
): { header: import('../wire/packet-header.js').PacketHeader; length: number } | undefined {
  const result = decodeHeader(packet);
  return result.ok ? result.value : undefined;
}
