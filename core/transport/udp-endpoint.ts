import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { BraidError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { Subflow } from './subflow.js';
import {
  DatagramCork,
  SegmentingSender,
  segmentationByDefault,
  type DatagramBatch,
} from './udp-gso.js';
import {
  applySocketBuffers,
  checkAddress,
  transportLogger,
  udpMaxPayloadFor,
  UDP_SOCKET_BUFFER,
  type SocketBuffers,
} from './udp-subflow.js';

export interface UdpEndpointOptions {
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** As UdpSubflowOptions.segmentation: default on, unless BRAID_UDP_GSO=0. */
  segmentation?: boolean;
  logger?: Logger;
}

/**
 * Errors an unconnected socket reports for one destination (a send that failed);
 * they say nothing about the other clients on the socket.
 */
const PER_PEER_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EMSGSIZE',
  'EADDRNOTAVAIL',
  'EINVAL',
]);

/**
 * The server's view of one client's UDP path: it sends through the endpoint's shared
 * socket; its `onPacket` is fed by the owner, who routes the endpoint's datagrams.
 */
class VirtualUdpSubflow implements Subflow {
  readonly kind = 'udp' as const;
  readonly maxPacketSize: number;
  closed_ = false;
  onPacket: (packet: Buffer) => void = () => undefined;
  onDrain: () => void = () => undefined;
  onClose: (error: BraidError | undefined) => void = () => undefined;
  private readonly held = new DatagramCork((batch) => {
    const error =
      this.invalid ?? this.endpoint.sendBatch(batch, this.remoteAddress, this.remotePort);
    if (error !== undefined) this.endpoint.release(this, error);
  });

  constructor(
    private readonly endpoint: UdpEndpoint,
    readonly remoteAddress: string,
    readonly remotePort: number,
    /** Why this destination cannot be sent to, found when the subflow was made. */
    private readonly invalid: BraidError | undefined,
  ) {
    this.maxPacketSize = udpMaxPayloadFor(endpoint.address);
  }

  get closed(): boolean {
    return this.closed_;
  }

  get localAddress(): string {
    return this.endpoint.address;
  }

  get localPort(): number {
    return this.endpoint.port;
  }

  /** The shared socket's queue (the kernel took everything else) and what cork() holds. */
  get queuedBytes(): number {
    return this.closed_ ? 0 : this.endpoint.queuedBytes + this.held.bytes;
  }

  send(packet: Uint8Array): boolean {
    return this.transmit(packet);
  }

  sendParts(parts: readonly Buffer[]): boolean {
    return this.transmit(parts);
  }

  cork(): void {
    this.held.cork();
  }

  uncork(): void {
    if (!this.closed_) this.held.uncork();
  }

  private transmit(packet: Uint8Array | readonly Buffer[]): boolean {
    if (this.closed_) return false;
    this.held.add(packet);
    return !this.closed_;
  }

  /** Sends what cork() holds, then closes. */
  close(): void {
    this.uncork();
    this.endpoint.release(this, undefined);
  }
}

/**
 * dgram's lookup for IP literals, answering at once: node's default (dns.lookup)
 * answers a literal on the next tick, so each send of an unconnected socket would
 * leave after the caller's code, and the segment size it set (udp-gso.ts) could have
 * changed by then. Names are refused: no send here starts a lookup.
 */
function literalLookup(
  hostname: string,
  _options: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family !== 0) {
    callback(null, hostname, family);
    return;
  }
  const err: NodeJS.ErrnoException = new Error(`not an IP literal: ${hostname}`);
  err.code = 'EINVAL';
  callback(err, '', 0);
}

/**
 * A server's UDP socket on one of its addresses. Datagrams of every client arrive here
 * and go to `onDatagram` untouched; the owner decodes the clear header, finds the
 * association and path, and feeds that path's subflow (from `subflowFor`). Bind it to
 * a specific address rather than a wildcard: an unconnected socket cannot tell which
 * local address a datagram came in on, and replies must leave from the one the client
 * sent to.
 */
export class UdpEndpoint {
  /** Set by the owner; `packet` is the whole datagram. */
  onDatagram: (packet: Buffer, remoteAddress: string, remotePort: number) => void = () => undefined;
  private closed_ = false;
  private readonly subflows = new Set<VirtualUdpSubflow>();
  private readonly log: Logger;
  /** Errors of sends to single peers, which leave the endpoint running. */
  sendErrors = 0;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly sender: SegmentingSender,
    readonly address: string,
    readonly port: number,
    readonly socketBuffers: SocketBuffers,
    log: Logger,
  ) {
    this.log = log;
    socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (!this.closed_) this.onDatagram(msg, rinfo.address, rinfo.port);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.onSocketError(err));
    sender.onSendError = (err) => this.onSocketError(err);
  }

  private onSocketError(err: NodeJS.ErrnoException): void {
    if (err.code !== undefined && PER_PEER_ERRORS.has(err.code)) {
      this.sendErrors++;
      return;
    }
    this.shutdown(
      new BraidError('BRAID_ERR_TRANSPORT', `UDP endpoint failed: ${err.code ?? err.message}`, {
        path: `udp ${this.address}:${this.port}`,
        cause: err,
      }),
    );
  }

  /**
   * Binds a socket to `address`:`port` (0: the kernel picks). Rejects with
   * BRAID_ERR_USAGE for a malformed address, BRAID_ERR_TRANSPORT when it cannot bind.
   */
  static async bind(
    address: string,
    port: number,
    options: UdpEndpointOptions = {},
  ): Promise<UdpEndpoint> {
    const bad = checkAddress(address, port, 'endpoint', true);
    if (bad !== undefined) throw bad;
    const where = `udp ${address}:${port}`;
    const log = transportLogger(options.logger);
    const socket = dgram.createSocket({
      type: isIP(address) === 6 ? 'udp6' : 'udp4',
      lookup: literalLookup,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => {
        socket.close();
        reject(
          new BraidError('BRAID_ERR_TRANSPORT', 'could not bind UDP endpoint', {
            path: where,
            cause: err,
          }),
        );
      });
      socket.bind(port, address, () => resolve());
    });
    socket.removeAllListeners('error');
    const bound = socket.address();
    const buffers = applySocketBuffers(
      socket,
      options.recvBufferSize ?? UDP_SOCKET_BUFFER,
      options.sendBufferSize ?? UDP_SOCKET_BUFFER,
      log,
      where,
    );
    const sender = await SegmentingSender.create(
      socket,
      options.segmentation ?? segmentationByDefault(),
      log,
      where,
    );
    return new UdpEndpoint(socket, sender, bound.address, bound.port, buffers, log);
  }

  get closed(): boolean {
    return this.closed_;
  }

  /** Bytes handed to send() that the kernel did not take yet (libuv's queue). */
  get queuedBytes(): number {
    return this.closed_ ? 0 : this.socket.getSendQueueSize();
  }

  /** Subflows from `subflowFor` that are still open. */
  get subflowCount(): number {
    return this.subflows.size;
  }

  /**
   * Sends a batch's datagrams to `address`:`port`, in runs where it can (udp-gso.ts);
   * returns a BraidError instead of throwing when node refuses the destination
   * synchronously (a port of 0 from a forged source, a closed endpoint).
   */
  sendBatch(batch: DatagramBatch, address: string, port: number): BraidError | undefined {
    if (this.closed_) {
      return new BraidError('BRAID_ERR_TRANSPORT', 'UDP endpoint closed', {
        path: `udp ${this.address}:${this.port}`,
      });
    }
    try {
      this.sender.sendBatch(batch, port, address);
      return undefined;
    } catch (err) {
      this.sendErrors++;
      return new BraidError('BRAID_ERR_TRANSPORT', 'UDP send refused', {
        path: `udp ${this.address}:${this.port} -> ${address}:${port}`,
        cause: err,
      });
    }
  }

  /**
   * A subflow to `remoteAddress`:`remotePort` that sends through this socket. It stays
   * open until its own close() or the endpoint's. Never throws: a destination node
   * would refuse (not an IP literal, which would start a name lookup whose failure is
   * reported as a socket error; port 0) yields a subflow whose first send closes it
   * with BRAID_ERR_USAGE.
   */
  subflowFor(remoteAddress: string, remotePort: number): Subflow {
    const invalid = checkAddress(remoteAddress, remotePort, 'remote', false);
    const subflow = new VirtualUdpSubflow(this, remoteAddress, remotePort, invalid);
    this.subflows.add(subflow);
    return subflow;
  }

  /** @internal Closes one virtual subflow and tells its owner (once). */
  release(subflow: VirtualUdpSubflow, error: BraidError | undefined): void {
    if (subflow.closed_) return;
    subflow.closed_ = true;
    this.subflows.delete(subflow);
    subflow.onClose(error);
  }

  /** Closes the socket; each open virtual subflow's owner is told once, with no error. */
  close(): void {
    this.shutdown(undefined);
  }

  private shutdown(error: BraidError | undefined): void {
    if (this.closed_) return;
    this.closed_ = true;
    this.socket.close();
    if (error !== undefined)
      this.log.warn('UDP endpoint closed', { path: error.path, code: error.code });
    for (const subflow of [...this.subflows]) this.release(subflow, error);
  }
}
