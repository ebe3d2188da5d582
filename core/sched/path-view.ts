import type { PathEstimator, RecoveryFigures } from '../paths/estimators.js';
import type { UplinkRole } from '../paths/uplink-roles.js';
import type { Semantics, TransportKind } from '../wire/frame.js';

/**
 * What a scheduler sees of one path. The association keeps one PathView per path and
 * refreshes it with `fillPathView()` before each pick (no allocation); schedulers only
 * read it. Units: ms for times, bytes for sizes, bytes per second for rates.
 */
export interface PathView {
  id: number;
  kind: TransportKind;
  /** DESIGN §1 uplink role, as core/paths/uplink-roles.ts defines them. */
  role: PathRole;
  /** Lifecycle active, transport not blocked (Path.usable). */
  usable: boolean;
  srtt: number;
  rttvar: number;
  /** Smallest RTT seen (ms): the propagation part of srtt; srtt until a sample. */
  minRtt: number;
  /** RFC 3550 jitter (core/paths/estimators.ts), rttvar before any sample. */
  jitter: number;
  lossRate: number;
  /** Packets `lossRate` rests on (a scoreboard seed's included): how much to trust it. */
  lossSamples: number;
  /** Best estimate of what the path carries (PathEstimator.deliveryRate). */
  deliveryRate: number;
  cwnd: number;
  bytesInFlight: number;
  /** Bytes accepted below us and not yet sent: TCP `writableLength`; 0 on UDP. */
  queuedBytes: number;
  /** Largest packet the path takes. */
  mss: number;
  /** The congestion window and the pacer let a packet go now. */
  canSend: boolean;
  /** When the pacer lets a packet go (= now when it may go at once). */
  sendAt: number;
}

export type PathRole = UplinkRole;

export function createPathView(id: number, kind: TransportKind = 'udp'): PathView {
  return {
    id,
    kind,
    role: 'primary',
    usable: true,
    srtt: 333,
    rttvar: 166,
    minRtt: 333,
    jitter: 166,
    lossRate: 0,
    lossSamples: 0,
    deliveryRate: 0,
    cwnd: 12_000,
    bytesInFlight: 0,
    queuedBytes: 0,
    mss: 1200,
    canSend: true,
    sendAt: 0,
  };
}

/** What PathRecovery offers beyond its figures (core/paths/path-recovery.ts). */
export interface RecoveryForView extends RecoveryFigures {
  /** Infinity until the first RTT sample. */
  readonly minRtt: number;
  sendAllowance(): number;
  nextSendTime(bytes: number, now: number): number;
}

/**
 * Refreshes `view` from a path's recovery and estimator. Call it for each path before
 * a pick (per packet: it reads a handful of fields and allocates nothing).
 */
export function fillPathView(
  view: PathView,
  path: { usable: boolean; maxPacketSize: number },
  recovery: RecoveryForView,
  estimator: PathEstimator,
  role: PathRole,
  now: number,
): void {
  view.kind = estimator.kind;
  view.role = role;
  view.usable = path.usable;
  view.mss = path.maxPacketSize;
  view.srtt = estimator.srtt(recovery);
  view.rttvar = estimator.rttvar(recovery);
  view.minRtt = Number.isFinite(recovery.minRtt) ? Math.min(recovery.minRtt, view.srtt) : view.srtt;
  view.jitter = estimator.jitterMs(recovery);
  view.lossRate = estimator.lossRate(now);
  view.lossSamples = estimator.loss.samples(now) + (estimator.seeded?.samples ?? 0);
  view.deliveryRate = estimator.deliveryRate(recovery);
  view.cwnd = recovery.cwnd;
  view.bytesInFlight = recovery.bytesInFlight;
  view.queuedBytes = estimator.tcp?.unsentBytes ?? 0;
  const open = recovery.sendAllowance() > 0;
  view.sendAt = open ? recovery.nextSendTime(path.maxPacketSize, now) : now;
  view.canSend = open && view.sendAt <= now;
}

/** Per-session inputs that every scheduler reads. */
export interface SchedContext {
  semantics: Semantics;
  /** Bytes the session has waiting to be sent (ECF's k). */
  backlogBytes: number;
  /** Restrict to one path (the never-worse guard's single-path mode); -1 for any. */
  onlyPathId: number;
  /**
   * The next bytes are a repair (lost or reinjected stream data): the receiver waits
   * on them, so they go where they arrive first (SessionScheduler.pick), not by share.
   */
  repair: boolean;
}

export function createSchedContext(semantics: Semantics = 'reliable-ordered'): SchedContext {
  return { semantics, backlogBytes: 0, onlyPathId: -1, repair: false };
}

export function isReliable(semantics: Semantics): boolean {
  return semantics === 'reliable-ordered' || semantics === 'reliable-unordered';
}

/** At most this many copies of one packet (the original included). */
export const MAX_COPIES = 4;

/**
 * A scheduler's answer, reused from call to call (the hot path allocates nothing):
 * read it before the next pick.
 */
export class PathDecision {
  /** Index in `candidates` of the path to send on, -1 for "not now". */
  index = -1;
  pathId = -1;
  /** Further copies (duplication for loss): candidate indices, `duplicateCount` of them. */
  readonly duplicates = new Int32Array(MAX_COPIES - 1);
  duplicateCount = 0;
  /** Copies due on paths whose window is shut this instant: sent when it opens. */
  readonly deferred = new Int32Array(MAX_COPIES - 1);
  deferredCount = 0;
  /**
   * With index -1: when to ask again. Infinity means "when an ACK opens a window";
   * a finite time is a pacer release or a better path freeing up (ECF).
   */
  retryAt = Infinity;

  choose(index: number, pathId: number): this {
    this.index = index;
    this.pathId = pathId;
    this.duplicateCount = 0;
    this.deferredCount = 0;
    this.retryAt = Infinity;
    return this;
  }

  wait(retryAt: number): this {
    this.index = -1;
    this.pathId = -1;
    this.duplicateCount = 0;
    this.deferredCount = 0;
    this.retryAt = retryAt;
    return this;
  }
}

/** One scheduler per objective (DESIGN §3), behind one interface. */
export interface ObjectiveScheduler {
  pick(
    ctx: SchedContext,
    candidates: readonly PathView[],
    bytes: number,
    now: number,
  ): PathDecision;
}

// ------------------------------------------------------------ shared figures

/**
 * Which candidates may be used at all, by role (core/paths/uplink-roles.ts): primary
 * always; secondary when no primary is usable or none can send now (demand exceeds
 * the primaries); backup only when no primary or secondary path is usable; never
 * not at all. Then only the guard's single path, if one is set and usable.
 * Writes 1/0 per candidate into `out`; returns how many are eligible.
 */
export function markEligible(
  ctx: SchedContext,
  candidates: readonly PathView[],
  out: Uint8Array,
): number {
  let nonBackup = false;
  let primarySendable = false;
  let only = false;
  for (let i = 0; i < candidates.length; i++) {
    const v = candidates[i]!;
    if (v.usable && (v.role === 'primary' || v.role === 'secondary')) nonBackup = true;
    if (v.usable && v.role === 'primary' && v.canSend) primarySendable = true;
    if (v.usable && v.id === ctx.onlyPathId && v.role !== 'never') only = true;
  }
  let n = 0;
  for (let i = 0; i < candidates.length; i++) {
    const v = candidates[i]!;
    let ok =
      v.usable &&
      v.role !== 'never' &&
      (v.role !== 'backup' || !nonBackup) &&
      (v.role !== 'secondary' || !primarySendable);
    // A single-path order for a path that is gone falls back to all paths.
    if (only && v.id !== ctx.onlyPathId) ok = false;
    out[i] = ok ? 1 : 0;
    if (ok) n++;
  }
  return n;
}

/** Rate used for shares: delivery rate, times the fraction not lost for reliable sessions. */
export function effectiveRate(v: PathView, reliable: boolean): number {
  const rate = Math.max(v.deliveryRate, 1);
  return reliable ? rate * (1 - Math.min(v.lossRate, 0.99)) : rate;
}

/** How long until the path can take `bytes`: pacer, or the congestion window opening. */
export function waitMs(v: PathView, bytes: number, now: number): number {
  let wait = v.canSend ? 0 : Math.max(0, v.sendAt - now);
  const over = v.bytesInFlight + bytes - v.cwnd;
  // ACKs free the window at about cwnd bytes per RTT.
  if (over > 0 && !v.canSend) wait = Math.max(wait, (v.srtt * over) / Math.max(v.cwnd, 1));
  return wait;
}

/**
 * Expected time in ms from now until `bytes` sent on `v` arrive: wait for the path,
 * then the bytes queued ahead and these bytes at the path's rate (serialization),
 * then one-way delay srtt/2. For reliable sessions a loss costs a detection delay
 * (RFC 9002 §6.1.2: 9/8 RTT) and another one-way trip, weighted by p/(1-p) — the
 * expected number of retransmissions.
 */
export function expectedArrivalMs(
  v: PathView,
  bytes: number,
  now: number,
  reliable: boolean,
): number {
  const rate = Math.max(v.deliveryRate, 1);
  let t = waitMs(v, bytes, now) + ((v.queuedBytes + bytes) / rate) * 1000 + v.srtt / 2;
  if (reliable && v.lossRate > 0) {
    const p = Math.min(v.lossRate, 0.9);
    t += (p / (1 - p)) * ((9 / 8) * v.srtt + v.srtt / 2);
  }
  return t;
}

/**
 * How long `bytes` take from leaving on `v` to arriving (ms), counting the path's own
 * queue: of its bytes in flight about rate × minRtt are on the wire, the rest wait at
 * its bottleneck ahead of these. srtt/2 alone counts half a standing queue, and in
 * slow start (window past what the path holds) far less. ECF uses it for the fast
 * path's whole backlog and the slow path's packet.
 */
export function deliveryBehindFlightMs(v: PathView, bytes: number, reliable: boolean): number {
  const rate = effectiveRate(v, reliable);
  const ahead = v.queuedBytes + v.bytesInFlight + bytes;
  return (
    Math.max((bytes / rate) * 1000 + v.srtt / 2, (ahead / rate) * 1000 - v.minRtt / 2) + v.rttvar
  );
}

/** When `bytes` sent on `v` would arrive (ms from now): the wait for the path, then the above. */
export function arrivalBehindFlightMs(
  v: PathView,
  bytes: number,
  now: number,
  reliable: boolean,
): number {
  return waitMs(v, bytes, now) + deliveryBehindFlightMs(v, bytes, reliable);
}

/**
 * The decision for the path at `best` that arrives first: send on it when it can take
 * a packet now, else wait for it (its pacer release, or the next ACK when its window
 * is full) rather than take a later-arriving path; wait for an ACK when none is eligible.
 */
export function chooseOrWait(
  decision: PathDecision,
  candidates: readonly PathView[],
  best: number,
): PathDecision {
  if (best < 0) return decision.wait(Infinity);
  const v = candidates[best]!;
  if (!v.canSend) return decision.wait(v.bytesInFlight < v.cwnd ? v.sendAt : Infinity);
  return decision.choose(best, v.id);
}
