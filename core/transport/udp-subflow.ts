import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { TransportKind } from '../wire/frame.js';
import { BraidError } from '../util/errors.js';
import type { Subflow } from './subflow.js';

export interface UdpSubflowOptions {
  localAddress: string;
  remoteAddress: string;
  remotePort: number;
  /** Socket buffers asked for; the kernel caps them (net.core.rmem_max / wmem_max without privilege). */
  recvBufferSize?: number;
  sendBufferSize?: number;
}

/** Largest UDP payload we send from this address: loopback's MTU is 64 KiB, elsewhere an Ethernet MTU. */
export function udpMaxPayloadFor(localAddress: string): number {
  return localAddress.startsWith('127.') || localAddress === '::1' ? 65000 : 1452;
}

const DEFAULT_BUFFER = 4 * 1024 * 1024;

/**
 * A UDP subflow: a socket bound to one local address (so its packets leave on that
 * uplink) and connected to the peer, so sends need no address and only the peer's
 * datagrams arrive.
 */
class UdpSubflow implements Subflow {
  readonly kind: TransportKind = 'udp';
  readonly maxPacketSize: number;
  closed = false;
  onPacket: (packet: Buffer) => void = () => undefined;
  onDrain: () => void = () => undefined;
  onClose: (error: BraidError | undefined) => void = () => undefined;
  /** ICMP port-unreachable reports on the connected socket: transient, counted, not fatal. */
  refusedCount = 0;

  constructor(
    private readonly socket: dgram.Socket,
    readonly localAddress: string,
    readonly localPort: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {
    this.maxPacketSize = udpMaxPayloadFor(localAddress);
    socket.on('message', (msg) => this.onPacket(msg));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A connected UDP socket reports an earlier ICMP error on a later call; the
      // peer may simply not be listening yet, and loss recovery handles the rest.
      if (err.code === 'ECONNREFUSED') {
        this.refusedCount++;
        return;
      }
      this.fail(
        new BraidError('BRAID_ERR_TRANSPORT', `UDP socket error ${err.code ?? ''}`.trim(), {
          path: `${localAddress} -> ${remoteAddress}:${remotePort}`,
          cause: err,
        }),
      );
    });
    socket.on('close', () => this.fail(undefined));
  }

  get queuedBytes(): number {
    return this.closed ? 0 : this.socket.getSendQueueSize();
  }

  send(packet: Uint8Array): boolean {
    if (this.closed) return false;
    this.socket.send(packet);
    return true;
  }

  sendParts(parts: readonly Buffer[]): boolean {
    if (this.closed) return false;
    // One datagram from several buffers: sendmsg with an iovec, no join.
    this.socket.send(parts as Buffer[]);
    return true;
  }

  private fail(error: BraidError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.close();
    } catch (err) {
      // Already closed by the kernel side; nothing left to release.
      void err;
    }
    this.onClose(error);
  }

  close(): void {
    this.fail(undefined);
  }
}

export async function openUdpSubflow(options: UdpSubflowOptions): Promise<Subflow> {
  const socket = dgram.createSocket({
    type: isIPv6(options.localAddress) ? 'udp6' : 'udp4',
    recvBufferSize: options.recvBufferSize ?? DEFAULT_BUFFER,
    sendBufferSize: options.sendBufferSize ?? DEFAULT_BUFFER,
  });
  const where = `${options.localAddress} -> ${options.remoteAddress}:${options.remotePort}`;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(
        new BraidError('BRAID_ERR_TRANSPORT', 'could not open UDP subflow', {
          path: where,
          cause: err,
        }),
      );
    };
    socket.once('error', onError);
    socket.bind(0, options.localAddress, () => {
      socket.connect(options.remotePort, options.remoteAddress, () => {
        socket.off('error', onError);
        resolve();
      });
    });
  });
  const local = socket.address();
  return new UdpSubflow(
    socket,
    local.address,
    local.port,
    options.remoteAddress,
    options.remotePort,
  );
}
