import type { Clock, Random } from '../../core/util/clock.js';
import { BraidError } from '../../core/util/errors.js';

/**
 * The pure model of one direction of an emulated link, free of I/O: a packet
 * offered at time t goes through loss (random, then Gilbert-Elliott), a drop-tail
 * byte queue in front of a serialising bottleneck, then a delay line (one-way delay
 * plus jitter). The forwarder process calls offer() when it reads a packet and
 * takeDue() when the clock passes nextDue(); tests drive it with a ManualClock.
 *
 * Order of stages follows netem (loss is decided on enqueue) and a real bottleneck
 * (the queue is the backlog of bytes not yet serialised at the link rate).
 */

/** Bursty loss: the two-state Gilbert-Elliott chain, stepped once per packet. */
export interface GilbertElliott {
  /** Probability of moving from the good to the bad state, per packet. */
  p: number;
  /** Probability of moving from the bad to the good state, per packet (mean burst 1/r). */
  r: number;
  /** Loss probability in the good state. */
  lossGood: number;
  /** Loss probability in the bad state. */
  lossBad: number;
}

/** One direction's parameters; every field may change while traffic runs. */
export interface DirectionParams {
  /** One-way propagation delay, ms. */
  delayMs: number;
  /** Each packet's delay is delayMs plus a uniform draw in [-jitterMs, +jitterMs], floored at 0. */
  jitterMs: number;
  /** Let jitter reorder packets; when false a packet never leaves before its predecessor. */
  reorder: boolean;
  /** Independent random loss probability per packet. */
  lossRate: number;
  /** Bursty loss on top of lossRate, or null. */
  burst: GilbertElliott | null;
  /** Bottleneck rate in bit/s; 0 means no serialisation delay (unlimited). */
  rateBps: number;
  /** Drop-tail limit on bytes waiting for serialisation; 0 means unlimited. */
  queueBytes: number;
  /** Black hole: every packet is dropped, including those already in flight. */
  down: boolean;
}

/** One point of a replayed trace; fields left out keep the base parameters. */
export interface TracePoint {
  /** Offset from the start of the trace, ms; points are in increasing order. */
  atMs: number;
  rateBps?: number;
  delayMs?: number;
  lossRate?: number;
}

export interface Trace {
  points: TracePoint[];
  /** Replay from the start after this many ms; 0 or absent holds the last point. */
  loopMs?: number;
}

export type Verdict = 'queued' | 'lost' | 'queue-full' | 'down';

export interface DirectionStats {
  offeredPackets: number;
  offeredBytes: number;
  deliveredPackets: number;
  deliveredBytes: number;
  lostPackets: number;
  queueDropPackets: number;
  downDropPackets: number;
  /** Largest backlog seen, bytes. */
  maxBacklogBytes: number;
  /** Sum and maximum of (release time - due time) over delivered packets, ms: the I/O shell's lateness (negative: early). */
  lateMsSum: number;
  lateMsMax: number;
  /**
   * Time the serialiser stood idle between two accepted packets, ms (a rate-limited
   * link only): capacity the sender left unused. Of it, what fell in gaps over
   * IDLE_GAP_MS, and how many such gaps: a stalled sender, not a paced one.
   */
  idleMs: number;
  idleLongMs: number;
  idleLongGaps: number;
}

/** Idle gaps longer than this count as long (see DirectionStats.idleMs). */
export const IDLE_GAP_MS = 5;

export const defaultDirectionParams: Readonly<DirectionParams> = {
  delayMs: 0,
  jitterMs: 0,
  reorder: false,
  lossRate: 0,
  burst: null,
  rateBps: 0,
  queueBytes: 0,
  down: false,
};

/** Gilbert-Elliott parameters (loss only in the bad state) for a target loss rate and mean burst. */
export function burstLoss(lossRate: number, meanBurstPackets: number): GilbertElliott {
  if (!(lossRate >= 0 && lossRate < 1) || !(meanBurstPackets >= 1)) {
    throw new BraidError(
      'BRAID_ERR_CONFIG',
      'burst loss needs 0 <= lossRate < 1 and meanBurst >= 1',
      {
        value: { lossRate, meanBurstPackets },
      },
    );
  }
  const r = 1 / meanBurstPackets;
  // Stationary share of the bad state p/(p+r) equals the loss rate when lossBad = 1.
  const p = (lossRate * r) / (1 - lossRate);
  return { p, r, lossGood: 0, lossBad: 1 };
}

export function validateDirectionParams(params: DirectionParams): void {
  const bad = (field: string, value: unknown): never => {
    throw new BraidError('BRAID_ERR_CONFIG', `link parameter ${field} out of range`, { value });
  };
  const nonNegative = (field: keyof DirectionParams): void => {
    const v = params[field];
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) bad(field, v);
  };
  nonNegative('delayMs');
  nonNegative('jitterMs');
  nonNegative('rateBps');
  nonNegative('queueBytes');
  if (!(params.lossRate >= 0 && params.lossRate <= 1)) bad('lossRate', params.lossRate);
  const b = params.burst;
  if (b !== null) {
    for (const k of ['p', 'r', 'lossGood', 'lossBad'] as const) {
      if (!(b[k] >= 0 && b[k] <= 1)) bad(`burst.${k}`, b[k]);
    }
  }
}

/** traceIndex value that makes the next applyTrace() recompute the effective values. */
const FORCE_TRACE = -2;

interface InFlight<T> {
  due: number;
  seq: number;
  size: number;
  packet: T;
}

/**
 * One direction of a link. Packets are opaque (`T`); only their size matters.
 * Time comes from the injected clock, chance from the injected random source.
 */
export class LinkDirection<T> {
  private params: DirectionParams;
  private readonly clock: Clock;
  private readonly random: Random;
  /** Min-heap on (due, seq) of packets in the delay line. */
  private readonly heap: Array<InFlight<T>> = [];
  private seq = 0;
  /** Time the bottleneck finishes serialising everything accepted so far. */
  private busyUntil = 0;
  /** Latest release time handed out, for jitter without reordering. */
  private lastDue = 0;
  private badState = false;
  private trace: Trace | null = null;
  private traceStart = 0;
  private traceIndex = FORCE_TRACE;
  // Effective values: base parameters overridden by the current trace point.
  private rateBps: number;
  private delayMs: number;
  private lossRate: number;
  readonly stats: DirectionStats = {
    offeredPackets: 0,
    offeredBytes: 0,
    deliveredPackets: 0,
    deliveredBytes: 0,
    lostPackets: 0,
    queueDropPackets: 0,
    downDropPackets: 0,
    maxBacklogBytes: 0,
    lateMsSum: 0,
    lateMsMax: 0,
    idleMs: 0,
    idleLongMs: 0,
    idleLongGaps: 0,
  };

  constructor(params: Partial<DirectionParams>, clock: Clock, random: Random) {
    this.params = { ...defaultDirectionParams, ...params };
    validateDirectionParams(this.params);
    this.clock = clock;
    this.random = random;
    this.rateBps = this.params.rateBps;
    this.delayMs = this.params.delayMs;
    this.lossRate = this.params.lossRate;
  }

  get current(): Readonly<DirectionParams> {
    return this.params;
  }

  /** Changes parameters from now on; packets already accepted keep their schedule. */
  set(changes: Partial<DirectionParams>): void {
    const next = { ...this.params, ...changes };
    validateDirectionParams(next);
    this.params = next;
    if (changes.burst !== undefined) this.badState = false;
    this.traceIndex = FORCE_TRACE;
    this.applyTrace(this.clock.now());
  }

  /** Replays `trace` from now, or stops replay with null. */
  setTrace(trace: Trace | null): void {
    if (trace !== null) {
      for (let i = 1; i < trace.points.length; i++) {
        if (trace.points[i]!.atMs < trace.points[i - 1]!.atMs) {
          throw new BraidError('BRAID_ERR_CONFIG', 'trace points must be in time order', {
            value: i,
          });
        }
      }
    }
    this.trace = trace;
    this.traceStart = this.clock.now();
    this.traceIndex = FORCE_TRACE;
    this.applyTrace(this.traceStart);
  }

  /** Zeroes the counters (between measurements on one link). */
  resetStats(): void {
    const s = this.stats;
    s.offeredPackets = s.offeredBytes = s.deliveredPackets = s.deliveredBytes = 0;
    s.lostPackets = s.queueDropPackets = s.downDropPackets = 0;
    s.maxBacklogBytes = s.lateMsSum = s.lateMsMax = 0;
    s.idleMs = s.idleLongMs = s.idleLongGaps = 0;
  }

  /** Bytes accepted but not yet serialised at `now`. */
  backlogBytes(now: number = this.clock.now()): number {
    if (this.rateBps === 0 || this.busyUntil <= now) return 0;
    return ((this.busyUntil - now) * this.rateBps) / 8000;
  }

  /** Packets accepted and not yet released. */
  get inFlight(): number {
    return this.heap.length;
  }

  /** Offers a packet of `size` bytes at the clock's current time. */
  offer(packet: T, size: number): Verdict {
    const now = this.clock.now();
    const stats = this.stats;
    stats.offeredPackets++;
    stats.offeredBytes += size;
    if (this.trace !== null) this.applyTrace(now);
    if (this.params.down) {
      stats.downDropPackets++;
      return 'down';
    }
    if (this.isLost()) {
      stats.lostPackets++;
      return 'lost';
    }
    let sent = now;
    if (this.rateBps > 0) {
      const backlog = this.backlogBytes(now);
      if (this.params.queueBytes > 0 && backlog + size > this.params.queueBytes) {
        stats.queueDropPackets++;
        return 'queue-full';
      }
      if (this.busyUntil > 0 && this.busyUntil < now) {
        const idle = now - this.busyUntil;
        stats.idleMs += idle;
        if (idle > IDLE_GAP_MS) {
          stats.idleLongMs += idle;
          stats.idleLongGaps++;
        }
      }
      const start = this.busyUntil > now ? this.busyUntil : now;
      sent = start + (size * 8000) / this.rateBps;
      this.busyUntil = sent;
      if (backlog + size > stats.maxBacklogBytes) stats.maxBacklogBytes = backlog + size;
    }
    let delay = this.delayMs;
    const jitter = this.params.jitterMs;
    if (jitter > 0) {
      delay += (2 * this.random() - 1) * jitter;
      if (delay < 0) delay = 0;
    }
    let due = sent + delay;
    if (!this.params.reorder) {
      if (due < this.lastDue) due = this.lastDue;
      this.lastDue = due;
    }
    this.push({ due, seq: this.seq++, size, packet });
    return 'queued';
  }

  /** Release time of the next packet, or Infinity when none is in flight. */
  nextDue(): number {
    const top = this.heap[0];
    return top === undefined ? Infinity : top.due;
  }

  /**
   * Removes and returns the next packet due by `cutoff`, or undefined. Packets due
   * while the link is down are dropped here (black hole). `releasedAt` is when the
   * caller actually sends it, for the lateness statistics; a caller that wakes up
   * late on average may release slightly ahead by passing a later cutoff.
   */
  takeDue(cutoff: number = this.clock.now(), releasedAt: number = cutoff): T | undefined {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.due > cutoff) return undefined;
      this.pop();
      if (this.params.down) {
        this.stats.downDropPackets++;
        continue;
      }
      const stats = this.stats;
      stats.deliveredPackets++;
      stats.deliveredBytes += top.size;
      const late = releasedAt - top.due;
      stats.lateMsSum += late;
      if (late > stats.lateMsMax) stats.lateMsMax = late;
      return top.packet;
    }
  }

  private isLost(): boolean {
    if (this.lossRate > 0 && this.random() < this.lossRate) return true;
    const burst = this.params.burst;
    if (burst === null) return false;
    // Step the chain first, then draw the loss in the new state (Gilbert-Elliott, 1963).
    if (this.badState) {
      if (this.random() < burst.r) this.badState = false;
    } else if (this.random() < burst.p) {
      this.badState = true;
    }
    const loss = this.badState ? burst.lossBad : burst.lossGood;
    return loss > 0 && this.random() < loss;
  }

  private applyTrace(now: number): void {
    const trace = this.trace;
    if (trace === null || trace.points.length === 0) {
      this.rateBps = this.params.rateBps;
      this.delayMs = this.params.delayMs;
      this.lossRate = this.params.lossRate;
      return;
    }
    let t = now - this.traceStart;
    const loop = trace.loopMs ?? 0;
    if (loop > 0) t %= loop;
    const points = trace.points;
    // Points are sorted: step forward from the last index, restart after a loop.
    let i = this.traceIndex < 0 ? -1 : this.traceIndex;
    if (i >= 0 && points[i]!.atMs > t) i = -1;
    while (i + 1 < points.length && points[i + 1]!.atMs <= t) i++;
    if (i === this.traceIndex) return;
    this.traceIndex = i;
    const point = i >= 0 ? points[i]! : undefined;
    this.rateBps = point?.rateBps ?? this.params.rateBps;
    this.delayMs = point?.delayMs ?? this.params.delayMs;
    this.lossRate = point?.lossRate ?? this.params.lossRate;
  }

  private push(item: InFlight<T>): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (p.due < item.due || (p.due === item.due && p.seq < item.seq)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = item;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    const n = heap.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      const lc = heap[l]!;
      if (r < n) {
        const rc = heap[r]!;
        if (rc.due < lc.due || (rc.due === lc.due && rc.seq < lc.seq)) c = r;
      }
      const child = heap[c]!;
      if (last.due < child.due || (last.due === child.due && last.seq < child.seq)) break;
      heap[i] = child;
      i = c;
    }
    heap[i] = last;
  }
}

/** Deterministic PRNG (mulberry32) for reproducible loss and jitter. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
