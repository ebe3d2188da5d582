import type { Semantics } from '../wire/frame.js';
import { ReplayWindow } from '../transport/replay-window.js';
import { BraidError } from '../util/errors.js';
import { RangeSet } from './range-set.js';

export interface MessageReceiveStats {
  delivered: number;
  /** Copies of a message already delivered (duplication, retransmission races). */
  duplicates: number;
  /** Unreliable-ordered: arrived after its place in the order was skipped; dropped. */
  late: number;
  /** Unreliable-ordered: numbers given up on when the playout deadline passed. */
  skipped: number;
  /** Unreliable-unordered: too old for the duplicate window; dropped. */
  tooOld: number;
}

interface Held {
  data: Uint8Array;
  arrivedAt: number;
}

/** Messages an unreliable-unordered receiver tells apart from duplicates. */
const UNORDERED_WINDOW = 1 << 16;

/**
 * The receiving half of a message session (DESIGN §3 semantics table).
 *
 * - unreliable-unordered: delivered on arrival; a duplicate within the last 65,536
 *   numbers is dropped (older ones too, since they cannot be told apart).
 * - reliable-unordered: delivered on arrival, each number exactly once. The set of
 *   numbers received is exact (a range set), and stays small because the sender
 *   repairs every hole.
 * - unreliable-ordered: delivered in number order. A message behind a gap is held at
 *   most `deadlineMs` after it arrived; then the gap is skipped (the missing numbers
 *   count as skipped) and the held messages go out. A message whose place was
 *   skipped or passed is late: dropped and counted, never delivered after its
 *   deadline. The hold is bounded by `maxHeld` messages; beyond that the oldest gap
 *   is skipped at once.
 */
export class MessageReceiver {
  readonly semantics: Exclude<Semantics, 'reliable-ordered'>;
  readonly deadlineMs: number;
  readonly stats: MessageReceiveStats = {
    delivered: 0,
    duplicates: 0,
    late: 0,
    skipped: 0,
    tooOld: 0,
  };
  private readonly window: ReplayWindow | undefined;
  private readonly seen: RangeSet | undefined;
  /** Unreliable-ordered: the next number to deliver, and messages held behind a gap. */
  private nextNumber = 0;
  private readonly held = new Map<number, Held>();
  private heldOldestArrival = Infinity;
  private readonly maxHeld: number;

  constructor(
    semantics: Exclude<Semantics, 'reliable-ordered'>,
    deadlineMs: number,
    maxHeld = 4096,
  ) {
    this.semantics = semantics;
    if (semantics === 'unreliable-ordered' && !(deadlineMs > 0)) {
      throw new BraidError('BRAID_ERR_USAGE', 'unreliable-ordered needs a playout deadline', {
        value: deadlineMs,
      });
    }
    this.deadlineMs = deadlineMs;
    this.maxHeld = maxHeld;
    if (semantics === 'unreliable-unordered') this.window = new ReplayWindow(UNORDERED_WINDOW);
    if (semantics === 'reliable-unordered') this.seen = new RangeSet();
  }

  /** Messages held behind a gap (unreliable-ordered). */
  get heldCount(): number {
    return this.held.size;
  }

  /** When the oldest held message's deadline passes; Infinity when nothing is held. */
  get nextDeadline(): number {
    return this.held.size === 0 ? Infinity : this.heldOldestArrival + this.deadlineMs;
  }

  /** Handles one arriving message; `deliver` is called for each message now due, in order. */
  receive(
    number: number,
    data: Uint8Array,
    now: number,
    deliver: (data: Uint8Array) => void,
  ): void {
    switch (this.semantics) {
      case 'unreliable-unordered': {
        const w = this.window!;
        if (w.has(number)) {
          if (w.largest - number >= w.size) this.stats.tooOld++;
          else this.stats.duplicates++;
          return;
        }
        w.add(number);
        this.stats.delivered++;
        deliver(data);
        return;
      }
      case 'reliable-unordered': {
        const seen = this.seen!;
        if (seen.has(number)) {
          this.stats.duplicates++;
          return;
        }
        seen.add(number, number + 1);
        this.stats.delivered++;
        deliver(data);
        return;
      }
      case 'unreliable-ordered': {
        if (number < this.nextNumber) {
          this.stats.late++;
          return;
        }
        if (this.held.has(number)) {
          this.stats.duplicates++;
          return;
        }
        if (number === this.nextNumber) {
          this.nextNumber++;
          this.stats.delivered++;
          deliver(data);
          this.release(deliver);
          return;
        }
        if (this.held.size === 0) this.heldOldestArrival = now;
        this.held.set(number, { data, arrivedAt: now });
        if (this.held.size > this.maxHeld) this.skipGap(deliver);
        return;
      }
    }
  }

  /** Skips every gap whose held successor has waited past the deadline. */
  onTimer(now: number, deliver: (data: Uint8Array) => void): void {
    while (this.held.size > 0 && now >= this.heldOldestArrival + this.deadlineMs) {
      this.skipGap(deliver);
    }
  }

  /** Gives up on the numbers missing before the lowest held message, then releases. */
  private skipGap(deliver: (data: Uint8Array) => void): void {
    let lowest = Infinity;
    for (const n of this.held.keys()) if (n < lowest) lowest = n;
    this.stats.skipped += lowest - this.nextNumber;
    this.nextNumber = lowest;
    this.release(deliver);
  }

  /** Delivers held messages that are next in order, and recomputes the oldest arrival. */
  private release(deliver: (data: Uint8Array) => void): void {
    let h = this.held.get(this.nextNumber);
    while (h !== undefined) {
      this.held.delete(this.nextNumber);
      this.nextNumber++;
      this.stats.delivered++;
      deliver(h.data);
      h = this.held.get(this.nextNumber);
    }
    let oldest = Infinity;
    for (const v of this.held.values()) if (v.arrivedAt < oldest) oldest = v.arrivedAt;
    this.heldOldestArrival = oldest;
  }
}
