import { Duplex } from 'node:stream';
import { BraidError } from '../util/errors.js';
import type { Session } from '../session/session.js';
import type { FeedbackReport } from '../sched/combiner.js';

/**
 * A reliable-ordered session as a Node Duplex (DESIGN §4). Writes wait while the
 * session holds more unacknowledged bytes than its limit; `finish` fires once the
 * peer's session layer acknowledged every byte and the end of stream; the readable
 * side moves the receive window only as the application consumes.
 */
export class BraidStream extends Duplex {
  readonly session: Session;
  private pendingWrite: ((error?: Error | null) => void) | undefined;
  /** Chunks of a _writev not yet handed to the session. */
  private backlog: Buffer[] = [];
  private pendingFinal: ((error?: Error | null) => void) | undefined;
  private wantsData = false;
  private ended = false;

  constructor(session: Session) {
    super({ highWaterMark: 1024 * 1024, allowHalfOpen: true });
    this.session = session;
    session.events = {
      onReadable: () => this.pump(),
      onWritable: () => this.releaseWrite(),
      onSendDone: () => {
        const cb = this.pendingFinal;
        this.pendingFinal = undefined;
        cb?.();
      },
      onReset: (error: BraidError, byApplication: boolean) => {
        // The application closed the association itself: close quietly, as
        // socket.destroy() does (pending writes end with the stream); anything else
        // is an error the application must see.
        if (byApplication) {
          this.pendingWrite = undefined;
          this.pendingFinal = undefined;
          this.destroy();
          return;
        }
        this.releaseWrite(error);
        const cb = this.pendingFinal;
        this.pendingFinal = undefined;
        cb?.(error);
        this.destroy(error);
      },
      onClosed: () => undefined,
    };
    // Data may have arrived before the application got the stream.
    queueMicrotask(() => this.pump());
  }

  get sessionId(): number {
    return this.session.id;
  }

  /** Application feedback (paper §III-C): nudges this session's scheduler for a while. */
  feedback(report: FeedbackReport): void {
    this.session.feedback(report, performance.now());
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    try {
      this.session.write(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    if (this.session.writable) callback();
    else this.pendingWrite = callback;
  }

  override _writev(
    chunks: Array<{ chunk: Buffer }>,
    callback: (error?: Error | null) => void,
  ): void {
    // Hand chunks to the session only while it is under its send-buffer limit, so the
    // session's queue exceeds the limit by at most one chunk; the rest waits here.
    this.backlog = chunks.map((c) => c.chunk);
    this.pendingWrite = callback;
    this.feed();
  }

  /** Moves waiting chunks into the session while it is writable. */
  private feed(): void {
    const backlog = this.backlog;
    try {
      while (backlog.length > 0 && this.session.writable) this.session.write(backlog.shift()!);
    } catch (err) {
      backlog.length = 0;
      this.releaseWrite(err as Error);
      return;
    }
    if (backlog.length === 0) this.releaseWrite();
  }

  private releaseWrite(error?: Error): void {
    if (error === undefined && this.backlog.length > 0) {
      this.feed();
      return;
    }
    const cb = this.pendingWrite;
    if (cb === undefined) return;
    if (error === undefined && !this.session.writable) return;
    this.pendingWrite = undefined;
    cb(error ?? null);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.session.end();
    if (this.session.send.allAcked) callback();
    else this.pendingFinal = callback;
  }

  override _read(): void {
    this.wantsData = true;
    this.pump();
  }

  private pump(): void {
    if (!this.wantsData || this.ended || this.destroyed) return;
    const recv = this.session.recv;
    let chunk = recv.read();
    while (chunk !== undefined) {
      const more = this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      if (!more) {
        this.wantsData = false;
        break;
      }
      chunk = recv.read();
    }
    if (recv.finished && !this.ended) {
      this.ended = true;
      this.push(null);
    }
    this.session.consumed();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.session.isDone) {
      this.session.abort(
        error instanceof BraidError
          ? error
          : new BraidError('BRAID_ERR_SESSION_RESET', 'stream destroyed by the application', {
              cause: error ?? undefined,
            }),
      );
    }
    callback(error);
  }
}
