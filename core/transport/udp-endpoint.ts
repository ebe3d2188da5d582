import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { TransportKind } from '../wire/frame.js';
import { BraidError } from '../util/errors.js';
import type { Subflow } from './subflow.js';
import { udpMaxPayloadFor } from './udp-subflow.js';

const DEFAULT_BUFFER = 4 * 1024 * 1024;

/** The server's view of one client's UDP path: sends through the shared socket. */
class VirtualUdpSubflow implements Subflow {
  readonly kind: TransportKind = 'udp';
  readonly maxPacketSize: number;
  closed = false;
  onPacket: (packet: Buffer) => void = () => undefined;
  onDrain: () => void = () => undefined;
  onClose: (error: BraidError | undefined) => void = () => undefined;

  constructor(
    private readonly endpoint: UdpEndpoint,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {
    this.maxPacketSize = udpMaxPayloadFor(endpoint.address);
  }

  get localAddress(): string {
    return this.endpoint.address;
  }

  get localPort(): number {
    return this.endpoint.port;
  }

  get queuedBytes(): number {
    return this.endpoint.queuedBytes;
  }

  send(packet: Uint8Array): boolean {
    if (this.closed) return false;
    return this.endpoint.sendTo(packet, this.remoteAddress, this.remotePort);
  }

  sendParts(parts: readonly Buffer[]): boolean {
    if (this.closed) return false;
    return this.endpoint.sendTo(parts, this.remoteAddress, this.remotePort);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(undefined);
  }
}

/**
 * A server's UDP socket on one of its addresses. Datagrams of every client arrive
 * here; the owner routes them by the association id in the clear header.
 */
export class UdpEndpoint {
  onDatagram: (packet: Buffer, remoteAddress: string, remotePort: number) => void = () => undefined;
  private closed = false;
  private readonly virtuals = new Set<VirtualUdpSubflow>();

  private constructor(
    private readonly socket: dgram.Socket,
    readonly address: string,
    readonly port: number,
  ) {
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo.address, rinfo.port));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // An unconnected socket only sees send errors here; they concern one peer.
      if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH')
        return;
      this.close(
        new BraidError('BRAID_ERR_TRANSPORT', `UDP endpoint error ${err.code ?? ''}`.trim(), {
          path: `${address}:${port}`,
          cause: err,
        }),
      );
    });
  }

  static async bind(address: string, port: number): Promise<UdpEndpoint> {
    const socket = dgram.createSocket({
      type: isIPv6(address) ? 'udp6' : 'udp4',
      recvBufferSize: DEFAULT_BUFFER,
      sendBufferSize: DEFAULT_BUFFER,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) =>
        reject(
          new BraidError('BRAID_ERR_TRANSPORT', 'could not bind UDP endpoint', {
            path: `${address}:${port}`,
            cause: err,
          }),
        ),
      );
      socket.bind(port, address, () => resolve());
    });
    socket.removeAllListeners('error');
    const bound = socket.address();
    return new UdpEndpoint(socket, bound.address, bound.port);
  }

  get queuedBytes(): number {
    return this.closed ? 0 : this.socket.getSendQueueSize();
  }

  sendTo(packet: Uint8Array | readonly Buffer[], address: string, port: number): boolean {
    if (this.closed) return false;
    this.socket.send(packet as Buffer, port, address);
    return true;
  }

  subflowFor(remoteAddress: string, remotePort: number): Subflow {
    const subflow = new VirtualUdpSubflow(this, remoteAddress, remotePort);
    this.virtuals.add(subflow);
    return subflow;
  }

  close(error?: BraidError): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    for (const v of this.virtuals) {
      if (!v.closed) {
        v.closed = true;
        v.onClose(error);
      }
    }
    this.virtuals.clear();
  }
}
