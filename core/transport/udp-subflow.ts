import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import type { Subflow } from './subflow.js';
import { DatagramCork, SegmentingSender, segmentationByDefault } from './udp-gso.js';

/** 1500-byte Ethernet MTU minus an IPv6 (40) and a UDP (8) header: fits either family. */
export const UDP_DEFAULT_MAX_PAYLOAD = 1452;
/** Loopback's MTU is 64 KiB; this stays below the IPv4 UDP limit of 65507. */
export const UDP_LOOPBACK_MAX_PAYLOAD = 65000;
/**
 * Socket buffers asked for. A burst of a fast path (or a slow event loop) must not
 * overflow the receive buffer; Linux caps the request at net.core.rmem_max /
 * wmem_max unless the process has CAP_NET_ADMIN.
 */
export const UDP_SOCKET_BUFFER = 4 * 1024 * 1024;

/**
 * Errors a connected UDP socket reports on its next recvmsg after an ICMP message
 * came back for an earlier datagram (Linux icmp_err_convert; RFC 1122 §4.1.3.3 asks
 * UDP to pass them up). They describe the network at that moment (peer not listening
 * yet, route flapping, a smaller MTU), not the socket, which keeps working.
 */
const ICMP_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EMSGSIZE',
  'ENOPROTOOPT',
  'EPROTO',
  'EACCES',
]);

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackAddress(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

/**
 * Largest UDP payload to send from `localAddress` before path MTU probing (which the
 * session layer does itself): an Ethernet-sized datagram, or almost 64 KiB on
 * loopback, where bigger datagrams mean fewer AEAD calls and syscalls.
 */
export function udpMaxPayloadFor(localAddress: string): number {
  return isLoopbackAddress(localAddress) ? UDP_LOOPBACK_MAX_PAYLOAD : UDP_DEFAULT_MAX_PAYLOAD;
}

/** Socket buffer sizes as the kernel reports them (Linux: double the usable size). */
export interface SocketBuffers {
  recv: number;
  send: number;
}

let defaultLogger: Logger | undefined;
let warnedBufferCap = false;

/** @internal Shared by the UDP subflow and endpoint. */
export function transportLogger(logger: Logger | undefined): Logger {
  return logger ?? (defaultLogger ??= createLogger().child({ component: 'transport' }));
}

/**
 * @internal Asks for `recv`/`send` bytes of socket buffer on a bound socket and logs
 * what the kernel granted; warns once per process when the kernel capped the request.
 * A refused request leaves the default buffers: a smaller buffer costs throughput,
 * not correctness.
 */
export function applySocketBuffers(
  socket: dgram.Socket,
  recv: number,
  send: number,
  log: Logger,
  where: string,
): SocketBuffers {
  try {
    socket.setRecvBufferSize(recv);
    socket.setSendBufferSize(send);
  } catch (err) {
    log.warn('UDP socket buffer request refused', { where, recv, send, ...errorFields(err) });
  }
  const granted = { recv: socket.getRecvBufferSize(), send: socket.getSendBufferSize() };
  // Linux doubles the value set to account for its own bookkeeping (socket(7)).
  const usable = process.platform === 'linux' ? 0.5 : 1;
  const capped = granted.recv * usable < recv || granted.send * usable < send;
  if (capped && !warnedBufferCap) {
    warnedBufferCap = true;
    log.warn('UDP socket buffers capped by the kernel; raise net.core.rmem_max/wmem_max', {
      where,
      requestedRecv: recv,
      requestedSend: send,
      grantedRecv: granted.recv,
      grantedSend: granted.send,
    });
  } else {
    log.debug('UDP socket buffers', {
      where,
      grantedRecv: granted.recv,
      grantedSend: granted.send,
    });
  }
  return granted;
}

export interface UdpSubflowOptions {
  localAddress: string;
  remoteAddress: string;
  remotePort: number;
  /**
   * Interface that must own `localAddress`, checked when the subflow opens. Node cannot
   * set SO_BINDTODEVICE, so packets leave through the interface the routing table
   * picks for the bound source address (per-uplink source rules make that the right
   * one); this check catches an address that moved to another interface.
   */
  device?: string;
  recvBufferSize?: number;
  sendBufferSize?: number;
  /**
   * Send a flush's equal-size packets in runs of one system call each (Linux
   * UDP_SEGMENT; see udp-gso.ts). Default on, unless BRAID_UDP_GSO=0.
   */
  segmentation?: boolean;
  logger?: Logger;
}

/** A UDP subflow with the counters only UDP has. */
export interface UdpSubflow extends Subflow {
  readonly kind: 'udp';
  /** ICMP errors reported on this socket so far (see ICMP_ERRORS); none closes it. */
  readonly icmpErrors: number;
  /** Code of the latest ICMP error, for diagnostics. */
  readonly lastIcmpError: string | undefined;
  /** Socket buffers as granted by the kernel. */
  readonly socketBuffers: SocketBuffers;
}

/**
 * A socket bound to one local address (so its packets leave from that uplink) and
 * connected to the peer: sends need no address, and the kernel drops datagrams from
 * anyone else before they reach us.
 */
class ConnectedUdpSubflow implements UdpSubflow {
  readonly kind = 'udp' as const;
  readonly maxPacketSize: number;
  private closed_ = false;
  icmpErrors = 0;
  lastIcmpError: string | undefined;
  onPacket: (packet: Buffer) => void = () => undefined;
  onDrain: () => void = () => undefined;
  onClose: (error: BraidError | undefined) => void = () => undefined;
  /**
   * Sends without a callback (but for a socket's first run, see udp-gso.ts): libuv
   * then tries a synchronous sendmsg with no request object. Asynchronous send errors
   * are lost, which for a datagram is just loss.
   */
  private readonly held = new DatagramCork((batch) => {
    try {
      this.sender.sendBatch(batch);
    } catch (err) {
      this.fail(
        new BraidError('BRAID_ERR_TRANSPORT', 'UDP send failed', {
          path: this.describe(),
          cause: err,
        }),
      );
    }
  });

  constructor(
    private readonly socket: dgram.Socket,
    private readonly sender: SegmentingSender,
    readonly localAddress: string,
    readonly localPort: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly socketBuffers: SocketBuffers,
    private readonly log: Logger,
  ) {
    this.maxPacketSize = udpMaxPayloadFor(localAddress);
    socket.on('message', (msg: Buffer) => {
      if (!this.closed_) this.onPacket(msg);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.onSocketError(err));
    sender.onSendError = (err) => this.onSocketError(err);
  }

  private describe(): string {
    return `udp ${this.localAddress}:${this.localPort} -> ${this.remoteAddress}:${this.remotePort}`;
  }

  private onSocketError(err: NodeJS.ErrnoException): void {
    // Counted, not fatal: an ICMP error is transient by nature, and a path that stays
    // unreachable is found dead by the session layer's probes and timeouts.
    if (err.code !== undefined && ICMP_ERRORS.has(err.code)) {
      this.icmpErrors++;
      this.lastIcmpError = err.code;
      if (this.log.enabled('debug'))
        this.log.debug('ICMP error on UDP subflow', { path: this.describe(), code: err.code });
      return;
    }
    this.fail(
      new BraidError('BRAID_ERR_TRANSPORT', `UDP socket failed: ${err.code ?? err.message}`, {
        path: this.describe(),
        cause: err,
      }),
    );
  }

  get closed(): boolean {
    return this.closed_;
  }

  get queuedBytes(): number {
    return this.closed_ ? 0 : this.socket.getSendQueueSize() + this.held.bytes;
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
    // The payload size is not checked against maxPacketSize: the kernel drops what
    // does not fit.
    this.held.add(packet);
    return !this.closed_;
  }

  private fail(error: BraidError | undefined): void {
    if (this.closed_) return;
    this.closed_ = true;
    this.held.drop();
    this.socket.close();
    this.onClose(error);
  }

  /** Sends what cork() holds, then closes. */
  close(): void {
    this.uncork();
    this.fail(undefined);
  }
}

/**
 * @internal Checks an address and port given to a transport: an IP literal (no name
 * lookups on this path) and a port in range (0 only where the kernel picks one).
 */
export function checkAddress(
  address: string,
  port: number,
  what: string,
  allowPortZero: boolean,
): BraidError | undefined {
  if (isIP(address) === 0) {
    return new BraidError('BRAID_ERR_USAGE', `${what} address must be an IP literal`, {
      value: address,
    });
  }
  if (!Number.isInteger(port) || port < (allowPortZero ? 0 : 1) || port > 65535) {
    return new BraidError('BRAID_ERR_USAGE', `${what} port out of range`, { value: port });
  }
  return undefined;
}

function deviceOwns(device: string, address: string): boolean {
  const wanted = address.toLowerCase();
  return (networkInterfaces()[device] ?? []).some((a) => a.address.toLowerCase() === wanted);
}

/**
 * Opens a UDP subflow from `localAddress` (an ephemeral port) to the peer. Rejects with
 * BRAID_ERR_USAGE for a malformed address or port, BRAID_ERR_TRANSPORT when the
 * address is not on this host (or not on `device`) or the socket cannot be set up.
 */
export async function openUdpSubflow(options: UdpSubflowOptions): Promise<UdpSubflow> {
  const { localAddress, remoteAddress, remotePort } = options;
  const where = `udp ${localAddress} -> ${remoteAddress}:${remotePort}`;
  const bad =
    checkAddress(localAddress, 0, 'local', true) ??
    checkAddress(remoteAddress, remotePort, 'remote', false);
  if (bad !== undefined) throw bad;
  if (isIP(localAddress) !== isIP(remoteAddress)) {
    throw new BraidError('BRAID_ERR_USAGE', 'local and remote address families differ', {
      path: where,
    });
  }
  if (options.device !== undefined && !deviceOwns(options.device, localAddress)) {
    throw new BraidError('BRAID_ERR_TRANSPORT', `address is not on device ${options.device}`, {
      path: where,
      value: localAddress,
    });
  }
  const log = transportLogger(options.logger);
  const socket = dgram.createSocket(isIP(localAddress) === 6 ? 'udp6' : 'udp4');
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
    socket.bind(0, localAddress, () => {
      socket.connect(remotePort, remoteAddress, (err?: Error) => {
        if (err !== undefined && err !== null) {
          onError(err);
          return;
        }
        socket.off('error', onError);
        resolve();
      });
    });
  });
  const local = socket.address();
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
  return new ConnectedUdpSubflow(
    socket,
    sender,
    local.address,
    local.port,
    remoteAddress,
    remotePort,
    buffers,
    log,
  );
}
