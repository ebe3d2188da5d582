import type { Semantics } from '../wire/frame.js';

/** Lost messages kept for an owed copy (MessageSendQueue.lostOwed); the oldest go first. */
const MAX_LOST_OWED = 1024;

/** One message waiting to be sent, or sent and not yet acknowledged (reliable only). */
export interface OutMessage {
  readonly number: number;
  readonly data: Buffer;
  /** When the application handed it over (clock ms); the playout deadline counts from here. */
  readonly queuedAt: number;
  /**
   * Unreliable-ordered: `queuedAt` in microseconds since the queue's epoch (the
   * session's creation), sent with every copy so the receiver's deadline counts from
   * send() (DATAGRAM_STAMPED, message-receiver.ts).
   */
  readonly sentAtMicros?: number;
  /** Copies put on the wire so far (first sends, duplicates and retransmissions). */
  copies: number;
  acked: boolean;
  /** A copy of it is owed to a path whose window was shut (the association's copy debt). */
  copyOwed: boolean;
  /** Waiting in the repair queue after a loss. */
  inRepair: boolean;
}

export interface MessageSendStats {
  /** Messages the application handed over. */
  queued: number;
  /** Copies put on the wire, duplicates and retransmissions included. */
  copiesSent: number;
  retransmitted: number;
  /** Unreliable-ordered messages that waited past their deadline and were never sent. */
  expired: number;
  /** Unreliable messages whose packets were all declared lost (not repaired). */
  lost: number;
}

/**
 * The sending half of a message session (DESIGN §3 semantics table): a FIFO of
 * messages, each sent whole in one DATAGRAM frame. Reliable-unordered keeps each
 * message until the peer acknowledges a packet that carried it, and a loss puts it in
 * front of the queue again (the association may re-send it on any path). The
 * unreliable kinds forget a message once sent; unreliable-ordered also drops a message
 * that waited longer than the playout deadline, since it would be late at the receiver
 * anyway.
 */
export class MessageSendQueue {
  readonly reliable: boolean;
  readonly deadlineMs: number;
  readonly stats: MessageSendStats = {
    queued: 0,
    copiesSent: 0,
    retransmitted: 0,
    expired: 0,
    lost: 0,
  };
  private queue: OutMessage[] = [];
  private head = 0;
  /** Lost reliable messages, sent before new ones. */
  private repair: OutMessage[] = [];
  /**
   * Messages sent whose fate is not known yet, by number. Reliable ones wait for an
   * acknowledgement; unreliable ones for an acknowledgement or a loss, so that a
   * CLOSE is sent only after them and cannot overtake them on a faster path.
   */
  private readonly unacked = new Map<number, OutMessage>();
  private nextNumber = 0;
  private bytes = 0;
  /** Most bytes ever queued or unacknowledged (the send queue's peak). */
  peakBytes = 0;

  /** Unreliable-ordered: clock reading the send stamps count from; undefined: no stamps. */
  private readonly stampEpoch: number | undefined;

  constructor(
    semantics: Exclude<Semantics, 'reliable-ordered'>,
    deadlineMs: number,
    stampEpoch = 0,
  ) {
    this.reliable = semantics === 'reliable-unordered';
    this.deadlineMs = semantics === 'unreliable-ordered' ? deadlineMs : 0;
    this.stampEpoch = semantics === 'unreliable-ordered' ? stampEpoch : undefined;
  }

  /** Bytes queued or in flight unacknowledged, for the session's send-buffer limit. */
  get bufferedBytes(): number {
    return this.bytes;
  }

  get hasPending(): boolean {
    return this.repair.length > 0 || this.head < this.queue.length;
  }

  /** Nothing queued and (reliable) nothing unacknowledged. */
  get drained(): boolean {
    return !this.hasPending && this.unacked.size === 0;
  }

  push(data: Buffer, now: number): number {
    const message: OutMessage = {
      number: this.nextNumber++,
      data,
      queuedAt: now,
      copies: 0,
      acked: false,
      copyOwed: false,
      inRepair: false,
      sentAtMicros:
        this.stampEpoch === undefined
          ? undefined
          : Math.max(0, Math.round((now - this.stampEpoch) * 1000)),
    };
    this.queue.push(message);
    this.bytes += data.length;
    if (this.bytes > this.peakBytes) this.peakBytes = this.bytes;
    this.stats.queued++;
    return message.number;
  }

  /** The next message to put on the wire, if one fits in `room` bytes of payload. */
  peek(room: number, now: number): OutMessage | undefined {
    while (this.repair.length > 0) {
      const m = this.repair[0]!;
      if (m.acked) {
        this.repair.shift();
        m.inRepair = false;
        continue;
      }
      return m.data.length <= room ? m : undefined;
    }
    while (this.head < this.queue.length) {
      const m = this.queue[this.head]!;
      if (this.deadlineMs > 0 && now - m.queuedAt > this.deadlineMs) {
        this.advance();
        this.bytes -= m.data.length;
        this.stats.expired++;
        continue;
      }
      return m.data.length <= room ? m : undefined;
    }
    return undefined;
  }

  /** `peek()`'s message was written into a packet. */
  taken(message: OutMessage): void {
    if (this.repair.length > 0 && this.repair[0] === message) {
      this.repair.shift();
      message.inRepair = false;
      this.stats.retransmitted++;
    } else {
      this.advance();
      this.unacked.set(message.number, message);
      if (!this.reliable) this.bytes -= message.data.length;
    }
    message.copies++;
    this.stats.copiesSent++;
  }

  /** An extra copy of a message went out on another path (loss objective duplication). */
  duplicated(message: OutMessage): void {
    message.copies++;
    this.stats.copiesSent++;
    // An owed copy of a lost message has gone: nothing is kept for it any more.
    if (message.copyOwed) this.lostOwed.delete(message.number);
  }

  /** A sent message whose fate is not known yet (for copies on other paths). */
  unsettled(number: number): OutMessage | undefined {
    return this.unacked.get(number);
  }

  /**
   * Unreliable messages declared lost while a copy of them was still owed: that copy
   * is the only chance left, so it still goes. Lab e: of 546 copies deferred in one
   * run, 540 were dropped once their original settled; those whose original was lost
   * (some 2-3 % at those paths' loss rates) were lost for good, single-copy messages
   * in a run whose residual loss missed its target. Bounded, oldest first out.
   */
  private readonly lostOwed = new Map<number, OutMessage>();

  /** Marks a message whose copy a shut path owes (Association.deferCopies). */
  oweCopy(number: number): void {
    const m = this.unacked.get(number);
    if (m !== undefined) m.copyOwed = true;
  }

  /**
   * The message an owed copy is for: still unsettled, or lost while the copy was owed
   * (and, unreliable-ordered, still within its deadline) until that copy went
   * (duplicated).
   */
  owedCopy(number: number, now: number): OutMessage | undefined {
    const m = this.unacked.get(number);
    if (m !== undefined) return m;
    const lost = this.lostOwed.get(number);
    if (lost === undefined) return undefined;
    if (this.deadlineMs > 0 && now - lost.queuedAt > this.deadlineMs) {
      this.lostOwed.delete(number);
      return undefined;
    }
    return lost;
  }

  onAcked(number: number): void {
    const m = this.unacked.get(number);
    if (m === undefined) return;
    m.acked = true;
    this.unacked.delete(number);
    if (this.reliable) this.bytes -= m.data.length;
  }

  /**
   * A packet carrying this message was declared lost. Another copy may still arrive
   * (duplication); the message is re-sent unless some copy was acknowledged already.
   */
  onLost(number: number): void {
    const m = this.unacked.get(number);
    if (m === undefined || m.inRepair) return;
    if (!this.reliable) {
      // Not repaired: the loss is settled (and counted) as it is.
      this.unacked.delete(number);
      this.stats.lost++;
      if (m.copyOwed) {
        this.lostOwed.set(number, m);
        if (this.lostOwed.size > MAX_LOST_OWED)
          this.lostOwed.delete(this.lostOwed.keys().next().value!);
      }
      return;
    }
    m.inRepair = true;
    this.repair.push(m);
  }

  private advance(): void {
    this.head++;
    // Compact now and then instead of shifting per message.
    if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
