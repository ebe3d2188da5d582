import { EventEmitter } from 'node:events';
import { BraidError } from '../util/errors.js';
import type { MessageSemantics, Session } from '../session/session.js';
import type { Clock } from '../util/clock.js';
import type { FeedbackReport } from '../sched/combiner.js';
import { systemClock } from '../util/clock.js';

export interface MessageSocketEvents {
  /** One message, whole, as the peer sent it. */
  message: [Buffer];
  /** The send buffer dropped below its limit after `send()` returned false. */
  drain: [];
  /** The peer closed its side: no further message will arrive. */
  end: [];
  /** Both sides closed, or the session failed (then `error` fired first). */
  close: [];
  error: [BraidError];
}

/** Counters of a message session, both halves. */
export interface MessageSocketStats {
  queued: number;
  copiesSent: number;
  retransmitted: number;
  /** Unreliable-ordered: not sent because they waited past the deadline. */
  expired: number;
  /** Unreliable: messages whose packets were declared lost (not repaired). */
  lost: number;
  delivered: number;
  duplicates: number;
  /** Unreliable-ordered: arrived after their place was skipped; dropped. */
  late: number;
  /** Unreliable-ordered: numbers never received by their playout deadline. */
  skipped: number;
}

/** Messages kept for an async iterator that is not reading; beyond this the oldest go. */
const ITERATOR_QUEUE_LIMIT = 4096;

/**
 * A message session (DESIGN §4): unreliable-unordered, reliable-unordered or
 * unreliable-ordered. Each `send()` is one message, delivered whole or not at all,
 * under the semantics chosen at open. Messages arrive as `message` events, or through
 * `for await (const m of socket)`.
 */
export class BraidMessageSocket extends EventEmitter<MessageSocketEvents> {
  readonly session: Session;
  readonly semantics: MessageSemantics;
  private readonly clock: Clock;
  private closed = false;
  private readonly waiting: Array<(r: IteratorResult<Buffer>) => void> = [];
  private readonly queued: Buffer[] = [];
  private iterating = false;
  private iteratorDropped = 0;
  private destroying = false;

  constructor(session: Session, clock: Clock = systemClock) {
    super();
    if (session.msg === undefined) {
      throw new BraidError('BRAID_ERR_USAGE', 'a message socket needs a message session', {
        value: session.semantics,
      });
    }
    this.session = session;
    this.semantics = session.semantics as MessageSemantics;
    this.clock = clock;
    session.events = {
      onReadable: () => undefined,
      onWritable: () => this.emit('drain'),
      onSendDone: () => undefined,
      onMessage: (data) => this.onMessage(data),
      onPeerEnd: () => {
        this.emit('end');
        this.finishIterator();
      },
      onReset: (error, byApplication) => {
        // The application's own destroy() is not an error it must be told about.
        if (!byApplication && !this.destroying) this.emit('error', error);
        this.finish();
      },
      onClosed: () => this.finish(),
    };
  }

  get sessionId(): number {
    return this.session.id;
  }

  /** Largest message `send()` accepts. */
  get maxMessageSize(): number {
    return this.session.maxMessageSize;
  }

  /**
   * Queues one message. Returns false when the send buffer is over its limit: the
   * message is still queued, and `drain` tells when to go on. Throws a BraidError
   * (BRAID_ERR_USAGE) for a message over `maxMessageSize`, and
   * BRAID_ERR_SESSION_STATE once closed.
   */
  send(data: Buffer | Uint8Array | string): boolean {
    const buf =
      typeof data === 'string'
        ? Buffer.from(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return this.session.sendMessage(buf, this.clock.now());
  }

  /** Closes our sending half once every queued message is settled; `close` fires when both sides are done. */
  end(): void {
    this.session.end();
  }

  /**
   * Application feedback (paper §III-C, DESIGN §4 `feedback(report)`): what the app
   * experiences nudges this session's scheduler for a while, e.g. `{ objective:
   * 'latency', pathId }` when one path's messages come too late.
   */
  feedback(report: FeedbackReport): void {
    this.session.feedback(report, this.clock.now());
  }

  /** Aborts the session at once. */
  destroy(error?: BraidError): void {
    if (!this.session.isDone) {
      this.destroying = error === undefined;
      this.session.abort(
        error ??
          new BraidError('BRAID_ERR_SESSION_RESET', 'message socket destroyed by the application', {
            value: this.session.id,
          }),
      );
    }
  }

  get stats(): MessageSocketStats {
    const s = this.session.msg!.send.stats;
    const r = this.session.msg!.recv.stats;
    return {
      queued: s.queued,
      copiesSent: s.copiesSent,
      retransmitted: s.retransmitted,
      expired: s.expired,
      lost: s.lost,
      delivered: r.delivered,
      duplicates: r.duplicates,
      late: r.late,
      skipped: r.skipped,
    };
  }

  /** Messages an idle async iterator had to drop (its queue is bounded). */
  get iteratorOverflow(): number {
    return this.iteratorDropped;
  }

  private onMessage(data: Uint8Array): void {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.emit('message', buf);
    // Kept for an iterator that has not started yet only when nobody listens.
    if (!this.iterating && this.listenerCount('message') > 0) return;
    const w = this.waiting.shift();
    if (w !== undefined) {
      w({ value: buf, done: false });
      return;
    }
    if (this.queued.length >= ITERATOR_QUEUE_LIMIT) {
      this.queued.shift();
      this.iteratorDropped++;
    }
    this.queued.push(buf);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.finishIterator();
    this.emit('close');
  }

  private finishIterator(): void {
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    this.iterating = true;
    return {
      next: (): Promise<IteratorResult<Buffer>> => {
        const m = this.queued.shift();
        if (m !== undefined) return Promise.resolve({ value: m, done: false });
        if (this.closed || this.session.state === 'remote-finished') {
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve) => this.waiting.push(resolve));
      },
      return: (): Promise<IteratorResult<Buffer>> => {
        this.iterating = false;
        this.queued.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
