import net from 'node:net';
import type { TransportKind } from '../wire/frame.js';
import { RecordDecoder, RECORD_HEADER_LENGTH, writeRecordHeader } from '../wire/record-decoder.js';
import { BraidError } from '../util/errors.js';
import type { Subflow } from './subflow.js';

export interface TcpSubflowOptions {
  /** Bytes queued in user space above which send() asks the caller to wait. */
  queueLimit?: number;
  /** Largest record body. */
  maxPacketSize?: number;
}

/**
 * DESIGN §3: the session layer limits what it queues into a TCP socket so that kernel
 * and user-space buffers do not turn into head-of-line blocking for data that could
 * go on another path.
 */
const DEFAULT_QUEUE_LIMIT = 256 * 1024;
const DEFAULT_MAX_PACKET = 65536;

/** A TCP subflow: packets as length-prefixed records (DESIGN §3). */
class TcpSubflow implements Subflow {
  readonly kind: TransportKind = 'tcp';
  readonly maxPacketSize: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  closed = false;
  onPacket: (packet: Buffer) => void = () => undefined;
  onDrain: () => void = () => undefined;
  onClose: (error: BraidError | undefined) => void = () => undefined;
  private readonly decoder: RecordDecoder;
  private readonly queueLimit: number;

  constructor(
    private readonly socket: net.Socket,
    options: TcpSubflowOptions,
  ) {
    this.maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET;
    this.queueLimit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    this.decoder = new RecordDecoder(this.maxPacketSize + 1024);
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err: NodeJS.ErrnoException) =>
      this.fail(
        new BraidError('BRAID_ERR_TRANSPORT', `TCP subflow error ${err.code ?? ''}`.trim(), {
          path: this.describe(),
          cause: err,
        }),
      ),
    );
    socket.on('end', () => socket.end());
    socket.on('close', () =>
      this.fail(
        new BraidError('BRAID_ERR_PATH_FAILED', 'TCP subflow closed by the peer', {
          path: this.describe(),
        }),
      ),
    );
  }

  private describe(): string {
    return `${this.localAddress}:${this.localPort} -> ${this.remoteAddress}:${this.remotePort}`;
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    for (;;) {
      const record = this.decoder.next();
      if (record === undefined) return;
      if (record instanceof BraidError) {
        this.fail(record);
        return;
      }
      this.onPacket(record);
      if (this.closed) return;
    }
  }

  get queuedBytes(): number {
    return this.closed ? 0 : this.socket.writableLength;
  }

  send(packet: Uint8Array): boolean {
    if (this.closed) return false;
    const prefix = Buffer.allocUnsafe(RECORD_HEADER_LENGTH);
    writeRecordHeader(prefix, 0, packet.length);
    // cork/uncork hands prefix and body to one writev, without copying the body.
    this.socket.cork();
    this.socket.write(prefix);
    this.socket.write(packet);
    this.socket.uncork();
    return this.socket.writableLength < this.queueLimit;
  }

  sendParts(parts: readonly Buffer[]): boolean {
    if (this.closed) return false;
    let length = 0;
    for (const part of parts) length += part.length;
    const prefix = Buffer.allocUnsafe(RECORD_HEADER_LENGTH);
    writeRecordHeader(prefix, 0, length);
    this.socket.cork();
    this.socket.write(prefix);
    for (const part of parts) this.socket.write(part);
    this.socket.uncork();
    return this.socket.writableLength < this.queueLimit;
  }

  private fail(error: BraidError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose(error);
  }

  close(): void {
    this.fail(undefined);
  }
}

export function wrapTcpSocket(socket: net.Socket, options: TcpSubflowOptions = {}): Subflow {
  return new TcpSubflow(socket, options);
}

export async function openTcpSubflow(
  options: TcpSubflowOptions & {
    localAddress: string;
    remoteAddress: string;
    remotePort: number;
    timeoutMs?: number;
  },
): Promise<Subflow> {
  const where = `${options.localAddress} -> ${options.remoteAddress}:${options.remotePort}`;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({
      host: options.remoteAddress,
      port: options.remotePort,
      localAddress: options.localAddress,
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new BraidError('BRAID_ERR_TRANSPORT', 'TCP subflow connect timed out', { path: where }),
      );
    }, options.timeoutMs ?? 5000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new BraidError('BRAID_ERR_TRANSPORT', 'could not open TCP subflow', {
          path: where,
          cause: err,
        }),
      );
    });
  });
  return wrapTcpSocket(socket, options);
}
