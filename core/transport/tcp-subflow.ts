import net from 'node:net';
import { RecordDecoder, RECORD_HEADER_LENGTH, writeRecordHeader } from '../wire/record-decoder.js';
import { BraidError, isBraidError } from '../util/errors.js';
import type { Subflow } from './subflow.js';
import { checkAddress } from './udp-subflow.js';

/**
 * DESIGN §3: the session layer limits what it queues into a TCP socket, so that data
 * that could go on another path does not wait behind a deep queue. 256 KiB keeps a
 * 20 Mbit/s uplink busy for 100 ms. Node cannot read or bound the kernel's share
 * (SIOCOUTQ, TCP_NOTSENT_LOWAT need setsockopt), so the limit covers what sits in
 * user space; what the kernel holds is bounded by its send buffer autotuning.
 */
export const TCP_DEFAULT_QUEUE_LIMIT = 256 * 1024;
/**
 * Largest record body: a record, prefix included, is 64 KiB. Bigger records mean fewer
 * AEAD calls (sealing plus opening runs at about 8 Gbit/s for 16 KiB packets and
 * 11 Gbit/s for 64 KiB ones on one core, see the transport report); larger still
 * would delay every frame in a record until its last byte arrived (52 ms for 64 KiB
 * at 10 Mbit/s) and grow the reassembly buffer.
 */
export const TCP_DEFAULT_MAX_PACKET = 65536 - RECORD_HEADER_LENGTH;
/** How long close() lets queued packets drain before the socket is destroyed. */
export const TCP_CLOSE_LINGER_MS = 2000;

export interface TcpSubflowOptions {
  /** Bytes queued in user space above which send() returns false. */
  queueLimit?: number;
  /** Largest record body sent and accepted; both ends must agree. */
  maxPacketSize?: number;
}

export interface OpenTcpSubflowOptions extends TcpSubflowOptions {
  localAddress: string;
  remoteAddress: string;
  remotePort: number;
  /** Connect timeout (default 5000 ms). */
  timeoutMs?: number;
}

/** IPv4 peers of a dual-stack socket appear as ::ffff:a.b.c.d; paths name them plainly. */
function plainAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function destroySocket(socket: net.Socket): void {
  socket.destroy();
}

/** Runs at the end of the tick in which the first packet was corked. */
function uncork(subflow: TcpSubflow): void {
  subflow.corked = false;
  subflow.socket.uncork();
}

/**
 * A TCP subflow: each packet travels as one record, a 4-byte big-endian length and the
 * packet (DESIGN §3, core/wire/record-decoder.ts).
 *
 * Sending corks the socket at the first packet of a tick and uncorks it on the next
 * tick, so a burst of packets from one flush leaves in a single writev instead of a
 * syscall each (on loopback here: 1.6-1.9 M records/s of 1200 B instead of 250 k/s,
 * and neither the prefix nor the packet is copied).
 */
class TcpSubflow implements Subflow {
  readonly kind = 'tcp' as const;
  readonly maxPacketSize: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Effective limit: never below the socket's high-water mark (see send()). */
  readonly queueLimit: number;
  corked = false;
  private closed_ = false;
  private wantDrain = false;
  private readonly decoder: RecordDecoder;
  onPacket: (packet: Buffer) => void = () => undefined;
  onDrain: () => void = () => undefined;
  onClose: (error: BraidError | undefined) => void = () => undefined;

  constructor(
    readonly socket: net.Socket,
    options: TcpSubflowOptions,
  ) {
    this.maxPacketSize = options.maxPacketSize ?? TCP_DEFAULT_MAX_PACKET;
    this.queueLimit = Math.max(
      options.queueLimit ?? TCP_DEFAULT_QUEUE_LIMIT,
      socket.writableHighWaterMark,
    );
    this.decoder = new RecordDecoder(this.maxPacketSize);
    this.localAddress = plainAddress(socket.localAddress);
    this.localPort = socket.localPort ?? 0;
    this.remoteAddress = plainAddress(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onSocketDrain());
    socket.on('error', (err: NodeJS.ErrnoException) =>
      this.fail(
        new BraidError('BRAID_ERR_TRANSPORT', `TCP subflow failed: ${err.code ?? err.message}`, {
          path: this.describe(),
          cause: err,
        }),
      ),
    );
    socket.on('end', () => this.fail(this.peerClosed()));
    socket.on('close', () => this.fail(this.peerClosed()));
    // A socket that died before it was wrapped has already emitted 'close'.
    if (socket.destroyed) process.nextTick(() => this.fail(this.peerClosed()));
  }

  private describe(): string {
    return `tcp ${this.localAddress}:${this.localPort} -> ${this.remoteAddress}:${this.remotePort}`;
  }

  private peerClosed(): BraidError {
    return new BraidError('BRAID_ERR_PATH_FAILED', 'TCP subflow closed by the peer', {
      path: this.describe(),
    });
  }

  get closed(): boolean {
    return this.closed_;
  }

  get queuedBytes(): number {
    return this.closed_ ? 0 : this.socket.writableLength;
  }

  private onData(chunk: Buffer): void {
    if (this.closed_) return;
    this.decoder.push(chunk);
    for (;;) {
      const record = this.decoder.next();
      if (record === undefined) return;
      if (isBraidError(record)) {
        this.fail(
          new BraidError(record.code, 'TCP record over the size cap', {
            path: this.describe(),
            value: record.value,
            cause: record,
          }),
        );
        return;
      }
      this.onPacket(record);
      if (this.closed_) return;
    }
  }

  private onSocketDrain(): void {
    if (!this.wantDrain || this.closed_) return;
    this.wantDrain = false;
    this.onDrain();
  }

  send(packet: Uint8Array): boolean {
    if (!this.startRecord(packet.length)) return false;
    this.socket.write(packet);
    return this.endRecord();
  }

  sendParts(parts: readonly Buffer[]): boolean {
    let length = 0;
    for (let i = 0; i < parts.length; i++) length += parts[i]!.length;
    if (!this.startRecord(length)) return false;
    for (let i = 0; i < parts.length; i++) this.socket.write(parts[i]!);
    return this.endRecord();
  }

  cork(): void {
    if (!this.closed_) this.socket.cork();
  }

  /** The corked records leave in one writev. */
  uncork(): void {
    if (this.socket.writableCorked > 0) this.socket.uncork();
  }

  /** Writes the length prefix of a record of `length` bytes; false when closed. */
  private startRecord(length: number): boolean {
    if (this.closed_) return false;
    if (length > this.maxPacketSize) {
      // The peer would drop the whole connection over this record; a caller's bug.
      this.fail(
        new BraidError('BRAID_ERR_USAGE', 'packet larger than the subflow carries', {
          path: this.describe(),
          value: length,
        }),
      );
      return false;
    }
    const prefix = Buffer.allocUnsafe(RECORD_HEADER_LENGTH);
    writeRecordHeader(prefix, 0, length);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(uncork, this);
    }
    this.socket.write(prefix);
    return true;
  }

  private endRecord(): boolean {
    // queueLimit >= the high-water mark, so the stream has set needDrain by now and
    // will emit 'drain' once its buffer is empty.
    if (this.socket.writableLength > this.queueLimit) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  private fail(error: BraidError | undefined): void {
    if (this.closed_) return;
    this.closed_ = true;
    if (error === undefined) {
      // The owner's close: let packets it sent just before (a CLOSE frame) go out.
      this.corked = false;
      this.socket.uncork();
      this.socket.end();
      // Bounded even if the peer never closes its side or keeps sending.
      setTimeout(destroySocket, TCP_CLOSE_LINGER_MS, this.socket).unref();
    } else {
      this.socket.destroy();
    }
    this.onClose(error);
  }

  close(): void {
    this.fail(undefined);
  }
}

/**
 * Wraps a connected socket (an accepted one, or one from openTcpSubflow) into a
 * record subflow. The queue limit is raised to the socket's writable high-water mark
 * if it is below it, because 'drain' only follows a write beyond that mark.
 */
export function wrapTcpSocket(socket: net.Socket, options: TcpSubflowOptions = {}): Subflow {
  return new TcpSubflow(socket, options);
}

/**
 * Connects from `localAddress` (an ephemeral port) to the peer. Rejects with
 * BRAID_ERR_USAGE for a malformed address or port and BRAID_ERR_TRANSPORT when the
 * address is not on this host, the peer refuses, or the timeout passes.
 */
export async function openTcpSubflow(options: OpenTcpSubflowOptions): Promise<Subflow> {
  const { localAddress, remoteAddress, remotePort } = options;
  const where = `tcp ${localAddress} -> ${remoteAddress}:${remotePort}`;
  const bad =
    checkAddress(localAddress, 0, 'local', true) ??
    checkAddress(remoteAddress, remotePort, 'remote', false);
  if (bad !== undefined) throw bad;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: remoteAddress, port: remotePort, localAddress });
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new BraidError('BRAID_ERR_TRANSPORT', 'TCP subflow connect timed out', {
          path: where,
          value: options.timeoutMs ?? 5000,
        }),
      );
    }, options.timeoutMs ?? 5000);
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(
        new BraidError(
          'BRAID_ERR_TRANSPORT',
          `could not open TCP subflow: ${err.code ?? err.message}`,
          {
            path: where,
            cause: err,
          },
        ),
      );
    };
    s.once('error', onError);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      resolve(s);
    });
  });
  return wrapTcpSocket(socket, options);
}
