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
  /** When its playout deadline passes (receiver clock, ms). */
  dueAt: number;
}

/** Messages an unreliable-unordered receiver tells apart from duplicates. */
const UNORDERED_WINDOW = 1 << 16;
/** Delivered numbers an unreliable-ordered receiver remembers to tell duplicates from late ones. */
const ORDERED_DUPLICATE_WINDOW = 1 << 12;

/** How far back the playout clock looks for its smallest (arrival − stamp) sample. */
export const PLAYOUT_CLOCK_WINDOW_MS = 10_000;
/** Sub-windows of the playout clock's sliding minimum. */
const PLAYOUT_CLOCK_BUCKETS = 5;

/**
 * Maps the sender's clock to ours, as an RTP playout buffer does: each stamped message
 * gives a sample arrival − stamp − d = true offset + (its transit − d), where d is the
 * smallest one-way delay of the path it came on, estimated as half that path's min RTT
 * (the association passes it). The smallest recent sample is then the offset plus the
 * smallest (transit − d), about 0 on a symmetric path. Taking d per path matters: a
 * message on a slow path compared against a fast path's delay would map its send time
 * late by the paths' difference. So send time on our clock ≈ stamp + min sample. The
 * minimum slides: it is kept per sub-window of windowMs/5 and the oldest sub-window
 * is dropped as the newest opens, so a drift between the clocks moves the estimate
 * along (a drift of d ppm lags it by at most d·windowMs, 1 ms for 100 ppm) instead of
 * accumulating.
 */
export class PlayoutClock {
  private readonly bucketMs: number;
  /** Per sub-window: its start (receiver ms) and its smallest sample. */
  private readonly starts: number[] = [];
  private readonly mins: number[] = [];

  constructor(readonly windowMs = PLAYOUT_CLOCK_WINDOW_MS) {
    this.bucketMs = windowMs / PLAYOUT_CLOCK_BUCKETS;
  }

  /**
   * A message stamped `stampMs` (sender clock) arrived at `now` (ours) on a path whose
   * smallest one-way delay is estimated at `oneWayDelayMs`.
   */
  observe(now: number, stampMs: number, oneWayDelayMs = 0): void {
    const sample = now - stampMs - oneWayDelayMs;
    const last = this.starts.length - 1;
    if (last >= 0 && now - this.starts[last]! < this.bucketMs) {
      if (sample < this.mins[last]!) this.mins[last] = sample;
    } else {
      this.starts.push(now);
      this.mins.push(sample);
    }
    while (this.starts.length > 0 && now - this.starts[0]! >= this.windowMs) {
      this.starts.shift();
      this.mins.shift();
    }
  }

  /** Smallest arrival − stamp − one-way delay in the window; undefined before the first sample. */
  get minSample(): number | undefined {
    if (this.mins.length === 0) return undefined;
    let m = Infinity;
    for (const v of this.mins) if (v < m) m = v;
    return m;
  }

  /** Our clock at the sender's `stampMs`. */
  toLocal(stampMs: number): number {
    return stampMs + (this.minSample ?? 0);
  }
}

/**
 * The receiving half of a message session (DESIGN §3 semantics table).
 *
 * - unreliable-unordered: delivered on arrival; a duplicate within the last 65,536
 *   numbers is dropped (older ones too, since they cannot be told apart).
 * - reliable-unordered: delivered on arrival, each number exactly once. The set of
 *   numbers received is exact (a range set), and stays small because the sender
 *   repairs every hole.
 * - unreliable-ordered: delivered in number order, each by its due time: its send
 *   time (the sender's stamp mapped to our clock by `PlayoutClock`) plus
 *   `deadlineMs`. A message behind a gap is held until it is due; then the gap is
 *   skipped (the missing numbers count as skipped) and the held messages go out. A
 *   message arriving after it is due, or after its place was skipped or passed, is
 *   late: dropped and counted, never delivered. A message without a stamp (a peer
 *   that does not stamp) is due `deadlineMs` after its arrival. The hold is bounded by
 *   `maxHeld` messages; beyond that the oldest gap is skipped at once.
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
  /** Earliest due time of a held message; Infinity when nothing is held. */
  private heldEarliestDue = Infinity;
  private readonly maxHeld: number;
  /** Unreliable-ordered: numbers delivered lately, to tell a duplicate from a late one. */
  private readonly deliveredWindow: ReplayWindow | undefined;
  /** Unreliable-ordered: numbers above `nextNumber` dropped late (not to count as skipped too). */
  private readonly lateAhead = new Set<number>();
  /** Unreliable-ordered: the sender's clock mapped to ours. */
  readonly playoutClock: PlayoutClock;

  constructor(
    semantics: Exclude<Semantics, 'reliable-ordered'>,
    deadlineMs: number,
    maxHeld = 4096,
    playoutClockWindowMs = PLAYOUT_CLOCK_WINDOW_MS,
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
    if (semantics === 'unreliable-ordered') {
      this.deliveredWindow = new ReplayWindow(ORDERED_DUPLICATE_WINDOW);
    }
    this.playoutClock = new PlayoutClock(playoutClockWindowMs);
  }

  /** Messages held behind a gap (unreliable-ordered). */
  get heldCount(): number {
    return this.held.size;
  }

  /** When the earliest held message is due (a gap is skipped); Infinity when nothing is held. */
  get nextDeadline(): number {
    return this.heldEarliestDue;
  }

  /**
   * Handles one arriving message; `deliver` is called for each message now due, in
   * order. Unreliable-ordered: `sentAtMicros` is the sender's stamp (DATAGRAM frame)
   * and `oneWayDelayMs` the estimate of the smallest one-way delay of the path it came
   * on (half that path's min RTT), used to map the stamp to our clock.
   */
  receive(
    number: number,
    data: Uint8Array,
    now: number,
    deliver: (data: Uint8Array) => void,
    sentAtMicros?: number,
    oneWayDelayMs = 0,
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
        let dueAt: number;
        if (sentAtMicros !== undefined) {
          const stampMs = sentAtMicros / 1000;
          this.playoutClock.observe(now, stampMs, oneWayDelayMs);
          dueAt = this.playoutClock.toLocal(stampMs) + this.deadlineMs;
        } else {
          dueAt = now + this.deadlineMs;
        }
        if (number < this.nextNumber) {
          const w = this.deliveredWindow!;
          if (w.has(number) && w.largest - number < w.size) this.stats.duplicates++;
          else this.stats.late++;
          return;
        }
        if (this.held.has(number) || this.lateAhead.has(number)) {
          this.stats.duplicates++;
          return;
        }
        if (now > dueAt) {
          this.stats.late++;
          if (number === this.nextNumber) {
            this.nextNumber++;
            this.release(deliver);
          } else {
            this.lateAhead.add(number);
            if (this.lateAhead.size > this.maxHeld) this.skipGap(deliver);
          }
          return;
        }
        if (number === this.nextNumber) {
          this.deliverNext(data, deliver);
          this.release(deliver);
          return;
        }
        this.held.set(number, { data, dueAt });
        if (dueAt < this.heldEarliestDue) this.heldEarliestDue = dueAt;
        if (this.held.size > this.maxHeld) this.skipGap(deliver);
        return;
      }
    }
  }

  /** Skips the gaps before held messages that are due at `now`, delivering them in order. */
  onTimer(now: number, deliver: (data: Uint8Array) => void): void {
    while (this.held.size > 0 && now >= this.heldEarliestDue) this.skipGap(deliver);
  }

  private deliverNext(data: Uint8Array, deliver: (data: Uint8Array) => void): void {
    this.deliveredWindow!.add(this.nextNumber);
    this.nextNumber++;
    this.stats.delivered++;
    deliver(data);
  }

  /**
   * Gives up on the numbers missing before the lowest held (or dropped-late) message,
   * then releases.
   */
  private skipGap(deliver: (data: Uint8Array) => void): void {
    let lowest = Infinity;
    for (const n of this.held.keys()) if (n < lowest) lowest = n;
    for (const n of this.lateAhead) if (n < lowest) lowest = n;
    let lateInGap = 0;
    for (const n of this.lateAhead) if (n < lowest) lateInGap++;
    this.stats.skipped += lowest - this.nextNumber - lateInGap;
    this.nextNumber = lowest;
    this.release(deliver);
  }

  /**
   * Delivers held messages that are next in order (passing numbers already dropped
   * late), and recomputes the earliest due time.
   */
  private release(deliver: (data: Uint8Array) => void): void {
    for (;;) {
      if (this.lateAhead.delete(this.nextNumber)) {
        this.nextNumber++;
        continue;
      }
      const h = this.held.get(this.nextNumber);
      if (h === undefined) break;
      this.held.delete(this.nextNumber);
      this.deliverNext(h.data, deliver);
    }
    for (const n of this.lateAhead) if (n < this.nextNumber) this.lateAhead.delete(n);
    let earliest = Infinity;
    for (const v of this.held.values()) if (v.dueAt < earliest) earliest = v.dueAt;
    this.heldEarliestDue = earliest;
  }
}
