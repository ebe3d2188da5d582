/**
 * Datagrams between the local proxy and the relay (SOCKS UDP ASSOCIATE), the one
 * place that decides how they travel:
 * - MessageDatagramChannel: one datagram per message of a message session, under the
 *   app rule's UDP semantics (unreliable-unordered, reliable-unordered,
 *   unreliable-ordered). A datagram larger than a message can be (one packet of the
 *   smallest path) is dropped and counted, as a link with that MTU would.
 * - StreamDatagramChannel: a reliable-ordered session with a 2-byte length prefix,
 *   for apps whose rule asks for reliable-ordered datagrams, and any size.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { BraidMessageSocket } from '../api/message-socket.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';

export interface DatagramChannelEvents {
  message: [Buffer];
  close: [];
}

export interface DatagramChannel extends EventEmitter<DatagramChannelEvents> {
  /** Sends one datagram; false when it was dropped (too large, or the channel is closed or full). */
  send(datagram: Buffer): boolean;
  close(): void;
  readonly closed: boolean;
  /** Datagrams dropped on the way out (channel full or closed, or over the size limit). */
  readonly dropped: number;
  /** Largest datagram (RFC 1928 §7 header included) `send` carries; larger ones are dropped. */
  readonly maxDatagram: number;
}

/** Largest datagram carried: what a 2-byte length can say, and the UDP maximum. */
export const MAX_DATAGRAM = 65535;
/**
 * Bytes a stream channel queues before it drops instead: a datagram late by more
 * than a few round trips is worth less than a fresh one (UDP semantics).
 */
const MAX_QUEUED_BYTES = 1024 * 1024;

export class StreamDatagramChannel
  extends EventEmitter<DatagramChannelEvents>
  implements DatagramChannel
{
  private pending = Buffer.alloc(0);
  private closed_ = false;
  private dropped_ = 0;
  private readonly log: Logger;

  constructor(
    private readonly stream: Duplex,
    logger: Logger = createLogger(),
  ) {
    super();
    this.log = logger;
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.close());
    stream.on('close', () => this.finish());
    stream.on('error', (err) => {
      this.log.info('datagram channel failed', errorFields(err));
      this.finish();
    });
    // Explicitly paused streams (the reply was read off the head) do not start on 'data'.
    stream.resume();
  }

  get closed(): boolean {
    return this.closed_;
  }

  get dropped(): number {
    return this.dropped_;
  }

  get maxDatagram(): number {
    return MAX_DATAGRAM;
  }

  send(datagram: Buffer): boolean {
    if (
      this.closed_ ||
      datagram.length > MAX_DATAGRAM ||
      this.stream.writableLength > MAX_QUEUED_BYTES
    ) {
      this.dropped_++;
      return false;
    }
    const head = Buffer.allocUnsafe(2);
    head.writeUInt16BE(datagram.length, 0);
    this.stream.write(head);
    this.stream.write(datagram);
    return true;
  }

  close(): void {
    if (this.closed_) return;
    this.closed_ = true;
    this.stream.end();
    this.emit('close');
  }

  private finish(): void {
    if (!this.stream.destroyed) this.stream.destroy();
    if (this.closed_) return;
    this.closed_ = true;
    this.emit('close');
  }

  private onData(chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      const datagram = buf.subarray(2, 2 + len);
      buf = buf.subarray(2 + len);
      this.emit('message', datagram);
    }
    this.pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
  }
}

/** One datagram per message of a message session (see the file comment). */
export class MessageDatagramChannel
  extends EventEmitter<DatagramChannelEvents>
  implements DatagramChannel
{
  private closed_ = false;
  private dropped_ = 0;

  constructor(
    private readonly socket: BraidMessageSocket,
    private readonly log: Logger = createLogger(),
  ) {
    super();
    socket.on('message', (m) => {
      if (!this.closed_) this.emit('message', m);
    });
    socket.on('end', () => this.close());
    socket.on('close', () => this.finish());
    socket.on('error', (err) => {
      this.log.info('datagram session failed', errorFields(err));
      this.finish();
    });
  }

  get closed(): boolean {
    return this.closed_;
  }

  get dropped(): number {
    return this.dropped_;
  }

  get maxDatagram(): number {
    return this.socket.maxMessageSize;
  }

  send(datagram: Buffer): boolean {
    if (this.closed_ || datagram.length > this.socket.maxMessageSize) {
      this.dropped_++;
      return false;
    }
    // false means "over the send buffer, queued anyway": the semantics decide its fate.
    this.socket.send(datagram);
    return true;
  }

  close(): void {
    if (this.closed_) return;
    this.closed_ = true;
    this.socket.end();
    this.emit('close');
  }

  private finish(): void {
    this.socket.destroy();
    if (this.closed_) return;
    this.closed_ = true;
    this.emit('close');
  }
}
