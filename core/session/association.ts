import { EventEmitter } from 'node:events';
import { isPathId, type AssociationSecrets } from '../handshake/keys.js';
import type { Subflow } from '../transport/subflow.js';
import { PacketProtection, TAG_LENGTH } from '../transport/packet-protection.js';
import type {
  Frame,
  FrameOf,
  Objective,
  PathState,
  Semantics,
  TransportKind,
} from '../wire/frame.js';
import { isAckEliciting } from '../wire/frame.js';
import { decodeFrames } from '../wire/decode.js';
import {
  encodeFrame,
  frameLength,
  STREAM_FRAME_OVERHEAD_MAX,
  streamFrameHeaderLength,
  writeStreamFrameHeader,
} from '../wire/encode.js';
import {
  decodeHeader,
  headerLength,
  writeHeader,
  type PacketHeader,
} from '../wire/packet-header.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { BraidError, codeName } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { errorFields } from '../util/log.js';
import type { Config } from './config.js';
import {
  Path,
  type PathLifecycle,
  type SentChunk,
  type SentMessage,
  type SentRecord,
} from './path.js';
import { INITIAL_PEER_WINDOW, Session, type SessionHost } from './session.js';
import { chargePath, pickPath } from '../sched/rate-split.js';
import { roleTiers, type RoleTiers, type UplinkRole } from '../paths/uplink-roles.js';
import { CoupledGroup } from '../paths/coupled-congestion.js';
import { PathMetricsCache } from '../paths/path-metrics-cache.js';
import type { FeedbackReport, ObjectivePolicy } from '../sched/combiner.js';
import { DiscordanceMonitor } from '../sched/discordance-monitor.js';
import {
  createSingleEstimate,
  NeverWorseGuard,
  type SingleEstimate,
} from '../sched/never-worse-guard.js';
import {
  createSchedContext,
  deliveryBehindFlightMs,
  fillPathView,
  type PathView,
  type SchedContext,
} from '../sched/path-view.js';

/**
 * Life of an association (one per peer, DESIGN §3). Only `transition()` assigns it.
 * - active: sessions run over whatever paths are up.
 * - orphaned: every path is gone; sessions wait for a path to (re)join until the
 *   idle timeout.
 * - closed: closed locally, by the peer (ERROR) or by the idle timeout.
 */
export type AssociationState = 'active' | 'orphaned' | 'closed';

export interface AssociationOptions {
  role: 'client' | 'server';
  secrets: AssociationSecrets;
  config: Config;
  logger: Logger;
  /** "host:port" of the peer, for logs and errors. */
  peer: string;
  clock?: Clock;
  /**
   * Congestion state kept from ended paths for new ones between the same addresses
   * (RFC 9040 temporal sharing): shared by the associations of one listener or host.
   */
  pathMetrics?: PathMetricsCache;
}

export interface OpenSessionOptions {
  semantics?: Semantics;
  priorities?: Objective[];
  target?: string;
  /** Playout deadline (ms) of an unreliable-ordered session; default 150. */
  deadlineMs?: number;
  /** The app's sliders and tolerances (DESIGN §3); priorities come from `priorities`. */
  policy?: Omit<ObjectivePolicy, 'priorities'>;
}

/** Default playout deadline of unreliable-ordered sessions (a call's jitter buffer). */
export const DEFAULT_DEADLINE_MS = 150;

/** Live paths an association accepts at once (n × m uplinks and replacements). */
const MAX_LIVE_PATHS = 256;
/** Retired paths kept whole (for the path summary); older ones leave only their id. */
const KEPT_RETIRED_PATHS = 64;
/**
 * Ids of paths that ended, so that a replayed JOIN cannot bring one back with its old
 * keys; beyond this many the association accepts no new path (a peer would have to
 * rejoin 65,536 times).
 */
const MAX_RETIRED_PATH_IDS = 65_536;

/** Period of the never-worse guard and the discordance monitor. */
const TICK_MS = 250;
/**
 * A stream's send buffer empty without a FIN for this long is taken to be the end of
 * what its application had to say for now, and its tail is reinjected (checkIdleTails).
 * Long enough for an application writing in a loop to have written again, short beside
 * any path's RTT.
 */
const IDLE_TAIL_MS = 2;

/** A path that sent nothing ACK-eliciting for this long is probed (ms). */
const RTT_REFRESH_MS = 1000;
/** Loss objective: messages a path may owe copies of (oldest dropped beyond). */
const MAX_COPY_DEBT = 512;
/** Head-of-line repair: a stuck prefix waits this many of the fastest path's RTTs... */
const HOL_RTTS = 4;
/** ...and at least this long (ms) before its gap is sent again... */
const HOL_MIN_MS = 200;
/** ...at most this many bytes of it per tick. */
const HOL_REINJECT_BYTES = 64 * 1024;

/**
 * Largest header of a DATAGRAM frame: type and four 8-byte varints (sessionId,
 * messageNumber, the unreliable-ordered send stamp, data length).
 */
const DATAGRAM_FRAME_OVERHEAD_MAX = 1 + 8 + 8 + 8 + 8;

/** Room kept in front of the payload for the packet header. */
const HEADER_ROOM = 32;
/** Peer session ids that may be skipped (opened out of order) before the peer is in error. */
const MAX_SKIPPED_PEER_IDS = 1024;
/** Packets built per flush before yielding to the event loop. */
const MAX_PACKETS_PER_FLUSH = 256;

export interface AssociationEvents {
  session: [Session];
  path: [Path, PathLifecycle];
  closed: [BraidError | undefined];
  /** After `closed`, when the closing period ended and the last transport closed. */
  released: [];
}

/**
 * After sending its close, an association keeps its UDP paths open for three probe
 * timeouts (RFC 9000 §10.2.1, the closing state), within these bounds: a close is one
 * datagram per path, and a peer whose copies were all lost would otherwise learn of it
 * only at its idle timeout. Each authentic packet that still arrives is answered with
 * the close again, at most once per CLOSING_ANSWER_MIN_MS per path, the gap doubling.
 */
const CLOSING_MIN_MS = 100;
const CLOSING_MAX_MS = 3000;
const CLOSING_ANSWER_MIN_MS = 10;

interface ClosingState {
  frame: Frame;
  paths: Set<Path>;
  /** Per path: when it may answer next, and the gap after that. */
  nextAnswer: Map<Path, { at: number; gap: number }>;
  timer: ReturnType<typeof setTimeout>;
}

export class Association extends EventEmitter<AssociationEvents> implements SessionHost {
  readonly role: 'client' | 'server';
  readonly id: Buffer;
  readonly secrets: AssociationSecrets;
  readonly config: Config;
  readonly peer: string;
  private readonly log: Logger;
  private readonly clock: Clock;
  private state_: AssociationState = 'active';
  private closeError: BraidError | undefined;

  readonly paths = new Map<number, Path>();
  /** Live paths in id order, for scheduling. */
  private live: Path[] = [];
  readonly sessions = new Map<number, Session>();
  /**
   * config.associationBuffer: received bytes held by all sessions now, and the credit
   * granted beyond INITIAL_PEER_WINDOW summed over sessions (Session.creditExtra).
   */
  private receiveHeld = 0;
  private creditExtraTotal = 0;
  /** Sessions reset because the association's receive buffer was full. */
  sessionsShed = 0;
  /** Sessions with something to send, served round robin. */
  private ready: Session[] = [];
  private readyRr = 0;
  private readonly readySet = new Set<Session>();
  /** Message sessions holding messages behind a gap (their playout deadline needs a timer). */
  private readonly heldSessions = new Set<Session>();
  /** Session-control frames to (re)send on any path. */
  private control: Frame[] = [];
  private nextSessionId: number;
  private nextPathId = 0;
  /** Peer-opened sessions already finished, so late frames do not recreate them. */
  /**
   * Peer session ids only grow, so a bounded record tells a finished session from a
   * new one: ids up to `peerIdHigh` were seen, except those in `peerIdsSkipped`
   * (a later session's frames overtook them on another path).
   */
  private peerIdHigh: number;
  private readonly peerIdsSkipped = new Set<number>();

  private readonly scratch: Buffer;
  private readonly retiredPaths: Path[] = [];
  private readonly retiredPathIds = new Set<number>();
  /** Messages written into the packet being built. */
  private sentMessages: SentMessage[] | null = null;
  /** Messages of the last data packet sent, for loss-objective copies. */
  private lastMessages: SentMessage[] | null = null;
  private readonly schedContext: SchedContext = createSchedContext();
  /** Paths for copies of the packet just sent (duplication), reused. */
  private readonly copyTargets: Path[] = [];
  private readonly deferTargets: Path[] = [];
  /** Messages the last sendCopies put in its packet. */
  private lastCopied = 0;
  /** When a scheduler that said "not now" wants to be asked again (ECF, pacing). */
  private schedRetryAt = Infinity;
  /** Per-peer discordance of objectives (paper §III-A, Fig. 2), for the dashboard. */
  readonly discordance = new DiscordanceMonitor();
  private nextTickAt = 0;
  private guardScratch = new Uint8Array(8);
  private readonly bestSingle: SingleEstimate = createSingleEstimate();
  /** Coupled congestion control over the UDP paths (LIA), unless opted out. */
  private readonly coupling: CoupledGroup | undefined;
  private readonly pathMetrics: PathMetricsCache | undefined;
  private flushScheduled = false;
  /** Set from the close until the closing period ends (see ClosingState). */
  private closing: ClosingState | undefined;
  /** Closes sent again in the closing state, in answer to late packets. */
  closingAnswers = 0;
  /** Bound once, so scheduling a flush or a timer allocates no closure. */
  private readonly flushCallback = (): void => this.flushNow();
  private readonly timerCallback = (): void => this.onTimer();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private lastReceivedAt: number;
  private orphanedAt = 0;

  constructor(options: AssociationOptions) {
    super();
    this.role = options.role;
    this.secrets = options.secrets;
    this.id = options.secrets.associationId;
    this.config = options.config;
    this.peer = options.peer;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger.child({ assoc: this.id.toString('hex'), role: this.role });
    // Client-opened sessions are even, server-opened odd (as QUIC stream ids).
    this.nextSessionId = this.role === 'client' ? 0 : 1;
    // Just below the peer's first id, so that skipped ids keep the peer's parity.
    this.peerIdHigh = this.role === 'client' ? -1 : -2;
    this.scratch = Buffer.alloc(HEADER_ROOM + Math.max(options.config.tcpPacketSize, 65536));
    // DESIGN §3 fairness: coupled by default, an app may opt out.
    this.coupling = options.config.coupledCongestion
      ? new CoupledGroup({ detectSharedBottleneck: options.config.detectSharedBottleneck })
      : undefined;
    this.pathMetrics = options.pathMetrics;
    this.lastReceivedAt = this.clock.now();
  }

  get state(): AssociationState {
    return this.state_;
  }

  private isClosed(): boolean {
    return this.state_ === 'closed';
  }

  get closedError(): BraidError | undefined {
    return this.closeError;
  }

  private transition(to: AssociationState): void {
    const from = this.state_;
    if (from === to) return;
    if (from === 'closed') {
      throw new BraidError('BRAID_ERR_INTERNAL', `association cannot leave closed for ${to}`, {
        peer: this.peer,
      });
    }
    this.state_ = to;
    this.log.info('association state', { from, to });
  }

  // ------------------------------------------------------------------ sessions

  openSession(options: OpenSessionOptions = {}): Session {
    if (this.state_ === 'closed') {
      throw new BraidError('BRAID_ERR_ASSOCIATION_CLOSED', 'association is closed', {
        peer: this.peer,
        cause: this.closeError,
      });
    }
    const semantics = options.semantics ?? 'reliable-ordered';
    const deadlineMs =
      semantics === 'unreliable-ordered' ? (options.deadlineMs ?? DEFAULT_DEADLINE_MS) : 0;
    if (!Number.isSafeInteger(deadlineMs) || deadlineMs < 0) {
      throw new BraidError('BRAID_ERR_USAGE', 'deadlineMs must be a whole number of ms', {
        value: options.deadlineMs,
      });
    }
    const id = this.nextSessionId;
    this.nextSessionId += 2;
    const session = new Session(
      {
        id,
        semantics,
        priorities: options.priorities ?? ['loss', 'throughput'],
        target: options.target ?? '',
        deadlineMs,
        maxMessageSize: this.maxMessageSize,
        now: this.clock.now(),
        ...(options.policy === undefined ? {} : { policy: options.policy }),
        window: this.config.sessionWindow,
        initialCredit: this.creditForNewSession(),
        sendBufferLimit: this.config.sendBufferLimit,
        local: true,
      },
      this,
    );
    this.sessions.set(id, session);
    this.noteCredit(session);
    this.wake(session);
    return session;
  }

  /**
   * Largest message of a message session. Messages are never split, so one must fit
   * the smallest packet any path uses: a UDP path's packet (at most 1452 bytes, the
   * Ethernet MTU less IP and UDP headers) less the packet header, the AEAD tag and the
   * DATAGRAM frame header, with some room to spare.
   */
  get maxMessageSize(): number {
    return Math.min(this.config.udpPacketSize, 1452) - 80;
  }

  wake(session: Session): void {
    if (!this.readySet.has(session)) {
      this.readySet.add(session);
      this.ready.push(session);
    }
    this.scheduleFlush();
  }

  sendMaxData(session: Session): void {
    this.noteCredit(session);
    session.maxDataPending = true;
    this.wake(session);
  }

  sendFeedback(session: Session, report: FeedbackReport): void {
    // FEEDBACK carries a figure per objective, not a path: the severity scaled to the
    // objective's unit stands for "this much too much" (throughput: too little).
    const severity = report.severity ?? 0.5;
    const frame: Frame = { type: 'feedback', sessionId: session.id };
    switch (report.objective) {
      case 'latency':
        frame.latencyMicros = Math.round(severity * 1e6);
        break;
      case 'jitter':
        frame.jitterMicros = Math.round(severity * 1e6);
        break;
      case 'loss':
        frame.lossPpm = Math.round(severity * 1e6);
        break;
      case 'throughput':
        frame.throughputBps = Math.round(severity * 1e6);
        break;
    }
    this.control.push(frame);
    this.scheduleFlush();
  }

  sendPolicy(session: Session): void {
    const frame = session.policyFrame();
    if (frame === undefined) return;
    this.control.push(frame);
    this.scheduleFlush();
  }

  /** FEEDBACK from the peer: its application's report nudges our side's scheduler. */
  private onFeedback(frame: FrameOf<'feedback'>): void {
    const session = this.sessions.get(frame.sessionId);
    if (session === undefined || session.isDone) return;
    const pairs: Array<[FeedbackReport['objective'], number | undefined]> = [
      ['latency', frame.latencyMicros],
      ['jitter', frame.jitterMicros],
      ['loss', frame.lossPpm],
      ['throughput', frame.throughputBps],
    ];
    for (const [objective, value] of pairs) {
      if (value === undefined) continue;
      const severity = Math.min(1, Math.max(0, value / 1e6));
      session.scheduler.feedback({ objective, severity }, this.clock.now());
    }
  }

  sendReset(session: Session, code: number, reason: string): void {
    this.control.push({ type: 'reset', sessionId: session.id, code, reason: reason.slice(0, 200) });
    this.scheduleFlush();
  }

  sessionEnded(session: Session): void {
    this.notePeaks(session);
    if (this.sessions.get(session.id) === session) {
      this.creditExtraTotal -= session.creditExtra;
      this.receiveHeld -= session.heldBytes;
      this.sendHeldTotal -= session.sendHeld;
    }
    session.creditExtra = 0;
    session.heldBytes = 0;
    session.sendHeld = 0;
    this.sessions.delete(session.id);
    this.heldSessions.delete(session);
    this.sendWaiters.delete(session);
    this.log.debug('session ended', { session: session.id, state: session.state });
    this.freeSendRoom();
  }

  // ---------------------------------------------------- association send buffer

  /** Unacknowledged bytes every session holds to send (bounded by associationSendBuffer). */
  private sendHeldTotal = 0;
  /** Sessions a write found without room in the send total, to tell when there is. */
  private readonly sendWaiters = new Set<Session>();

  /** Bytes all sessions hold to send now. */
  get sendBuffered(): number {
    return this.sendHeldTotal;
  }

  sendBufferChanged(session: Session, delta: number): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sendHeldTotal += delta;
    if (this.sendHeldTotal > this.peaks.associationSendBytes)
      this.peaks.associationSendBytes = this.sendHeldTotal;
  }

  sendRoom(session: Session | null): boolean {
    if (this.sendHeldTotal < this.config.associationSendBuffer) return true;
    if (session !== null) this.sendWaiters.add(session);
    return false;
  }

  /** Tells the sessions that waited for the send total that it has room again. */
  private freeSendRoom(): void {
    if (this.sendWaiters.size === 0 || this.sendHeldTotal >= this.config.associationSendBuffer)
      return;
    const waiting = [...this.sendWaiters];
    this.sendWaiters.clear();
    // Each may write and fill the room again; those that then find none wait again.
    for (const s of waiting) s.sendRoomFreed();
  }

  // ------------------------------------------------- association receive buffer

  /**
   * Credit (bytes beyond those delivered) a session may be granted: INITIAL_PEER_WINDOW
   * always (the peer may send that much before any MAX_DATA), more only from what
   * config.associationBuffer leaves once the other sessions' extra credit and an
   * INITIAL_PEER_WINDOW for each session are counted, where at least half the buffer
   * stays set aside for the INITIAL_PEER_WINDOW of sessions still to come. So while at
   * most associationBuffer / 2 / INITIAL_PEER_WINDOW sessions (128 by default) are open,
   * the peer can never make us hold more than associationBuffer by flow control alone;
   * beyond that, receiveBufferChanged sheds sessions.
   */
  receiveCredit(session: Session): number {
    return this.creditWith(this.sessions.size, this.creditExtraTotal - session.creditExtra);
  }

  /** receiveCredit for a session about to be created (not in `sessions` yet). */
  private creditForNewSession(): number {
    return this.creditWith(this.sessions.size + 1, this.creditExtraTotal);
  }

  private creditWith(sessions: number, othersExtra: number): number {
    const cap = this.config.associationBuffer;
    const reserved = Math.max(sessions, Math.floor(cap / 2 / INITIAL_PEER_WINDOW));
    const free = cap - reserved * INITIAL_PEER_WINDOW - othersExtra;
    return INITIAL_PEER_WINDOW + Math.max(0, free);
  }

  /**
   * Counts the credit a session's latest advertisement grants beyond INITIAL_PEER_WINDOW;
   * none for a message session, which refuses STREAM data.
   */
  private noteCredit(session: Session): void {
    if (this.sessions.get(session.id) !== session) return;
    const credit = session.recv.advertisedOffset - session.recv.deliveredOffset;
    const extra = session.isMessage ? 0 : Math.max(0, credit - INITIAL_PEER_WINDOW);
    this.creditExtraTotal += extra - session.creditExtra;
    session.creditExtra = extra;
  }

  /** Received bytes held by every session now (bounded by config.associationBuffer). */
  get receiveBuffered(): number {
    return this.receiveHeld;
  }

  /**
   * A session's held bytes changed. Over config.associationBuffer (a peer filled more
   * sessions' initial windows than the buffer holds, and the application reads none of
   * them), sessions are reset with BRAID_ERR_FLOW_CONTROL until the total fits: first
   * those the application never read a byte of, largest first, then the largest. A
   * session the application reads keeps going even when it holds more than the others
   * (a bulk session may hold its whole granted window while its reader catches up).
   */
  receiveBufferChanged(session: Session, delta: number): void {
    if (this.sessions.get(session.id) !== session) return;
    this.receiveHeld += delta;
    if (this.receiveHeld > this.peaks.associationReceiveBytes)
      this.peaks.associationReceiveBytes = this.receiveHeld;
    const cap = this.config.associationBuffer;
    while (this.receiveHeld > cap) {
      let largest: Session | undefined;
      for (const s of this.sessions.values()) {
        if (s.heldBytes === 0) continue;
        if (largest === undefined) {
          largest = s;
          continue;
        }
        const unread = s.recv.deliveredOffset === 0;
        const largestUnread = largest.recv.deliveredOffset === 0;
        if (unread !== largestUnread ? unread : s.heldBytes > largest.heldBytes) largest = s;
      }
      if (largest === undefined) break;
      this.sessionsShed++;
      const err = new BraidError(
        'BRAID_ERR_FLOW_CONTROL',
        `association receive buffer full (${this.receiveHeld} bytes held, cap ${cap}): ` +
          `session ${largest.id} holds ${largest.heldBytes} unread` +
          (largest.recv.deliveredOffset === 0 ? ' and was never read' : ''),
        { peer: this.peer, value: largest.heldBytes },
      );
      this.log.warn('session reset: association receive buffer full', {
        session: largest.id,
        held: largest.heldBytes,
        total: this.receiveHeld,
        cap,
        sessions: this.sessions.size,
      });
      largest.abort(err);
    }
  }

  // --------------------------------------------------------------------- paths

  /** Allocates a path id (client side). */
  allocatePathId(): number {
    return this.nextPathId++;
  }

  /**
   * Adds a path over `subflow`. The client starts it in `joining` and sends JOIN;
   * the server adds it `active` once a JOIN verified.
   */
  addPath(id: number, subflow: Subflow, initial: 'joining' | 'active'): Path {
    const kind = subflow.kind;
    const loopback = isLoopback(subflow.localAddress);
    const size =
      kind === 'tcp'
        ? this.config.tcpPacketSize
        : loopback
          ? this.config.loopbackUdpPacketSize
          : this.config.udpPacketSize;
    const path = new Path(
      {
        id,
        kind,
        subflow,
        keys: this.secrets.pathKeys(id, this.role),
        maxPacketSize: size,
        congestion: this.config.congestion,
        clock: this.clock,
      },
      initial,
    );
    this.paths.set(id, path);
    this.live.push(path);
    this.live.sort((a, b) => a.id - b.id);
    // TCP paths have the kernel's congestion control; only UDP paths are coupled.
    if (path.kind === 'udp') this.coupling?.add(path.recovery);
    const key = this.metricsKey(path);
    const now = this.clock.now();
    const learned = this.pathMetrics?.ssthresh(key, now);
    if (learned !== undefined) path.recovery.seedSsthresh(learned);
    const resume = this.pathMetrics?.resume(key, now);
    if (resume !== undefined) path.recovery.seedResume(resume);
    subflow.onPacket = (packet) => this.onSubflowPacket(path, packet);
    subflow.onDrain = () => {
      path.blocked = false;
      this.scheduleFlush();
    };
    subflow.onClose = (error) =>
      this.pathDied(
        path,
        error ?? new BraidError('BRAID_ERR_PATH_FAILED', 'transport closed', { path: id }),
      );
    if (this.state_ === 'orphaned') this.transition('active');
    this.log.info('path added', {
      path: id,
      kind,
      local: subflow.localAddress,
      remote: subflow.remoteAddress,
      state: initial,
    });
    if (initial === 'joining') {
      path.joinStartedAt = now;
      this.sendJoin(path, now);
    } else {
      this.emit('path', path, 'active');
    }
    this.armTimer();
    return path;
  }

  private sendJoin(path: Path, now: number): void {
    path.joinLastSentAt = now;
    const frame: Frame = {
      type: 'join',
      associationId: this.id,
      pathId: path.id,
      transport: path.kind,
      mac: this.secrets.joinMac(path.id, path.kind),
    };
    this.sendNow(path, [frame]);
  }

  /** Resolves when the path is active, rejects when it fails or the join times out. */
  waitJoined(path: Path): Promise<Path> {
    if (path.state === 'active') return Promise.resolve(path);
    return new Promise((resolve, reject) => {
      const onPath = (p: Path, state: PathLifecycle): void => {
        if (p !== path) return;
        if (state === 'active') {
          this.off('path', onPath);
          resolve(path);
        } else if (state === 'failed' || state === 'closed') {
          this.off('path', onPath);
          reject(
            new BraidError('BRAID_ERR_JOIN_REJECTED', 'path did not join', {
              path: path.id,
              peer: this.peer,
            }),
          );
        }
      };
      this.on('path', onPath);
    });
  }

  /** Server side: the first packet of a would-be path. Returns true when it verified and the path was added. */
  acceptJoin(
    header: PacketHeader,
    headerLen: number,
    packet: Buffer,
    makeSubflow: () => Subflow,
  ): boolean {
    if (this.state_ === 'closed') return false;
    const existing = this.paths.get(header.pathId);
    if (existing !== undefined) return false;
    // Anyone can name a live association (its id is in every clear header): a path id
    // the key schedule cannot have is dropped here, before any key is derived, and
    // no more than MAX_PATHS paths are ever accepted.
    if (
      !isPathId(header.pathId) ||
      this.retiredPathIds.has(header.pathId) ||
      this.live.length >= MAX_LIVE_PATHS ||
      this.retiredPathIds.size >= MAX_RETIRED_PATH_IDS
    ) {
      return false;
    }
    const keys = this.secrets.pathKeys(header.pathId, this.role);
    const protection = new PacketProtection(keys.send, keys.receive);
    const plain = protection.open(packet, headerLen, header.packetNumber);
    if (plain instanceof BraidError) return false;
    const decoded = decodeFrames(plain);
    if (!decoded.ok) return false;
    const join = decoded.value[0];
    // A JOIN that does not verify gets no reply (DESIGN §3).
    if (
      join === undefined ||
      join.type !== 'join' ||
      join.pathId !== header.pathId ||
      !this.secrets.verifyJoin(join)
    ) {
      return false;
    }
    const subflow = makeSubflow();
    if (subflow.kind !== join.transport) return false;
    const path = this.addPath(header.pathId, subflow, 'active');
    this.receive(path, packet, header, headerLen);
    return true;
  }

  private pathDied(path: Path, error: BraidError): void {
    if (!path.alive) return;
    const from = path.transition('failed');
    this.log.warn('path failed', {
      path: path.id,
      from,
      ...errorFields(error),
      desc: path.describe(),
    });
    this.retire(path);
    this.emit('path', path, 'failed');
  }

  /**
   * Takes a path off at once because its uplink is gone (interface removed, address
   * lost) or is being replaced: no timeout is waited for. Everything it had in flight
   * is re-sent on the other paths now (reinjection), and the peer is told over any
   * other path, so that it reinjects its own side too (DESIGN §3, paper §III-B).
   * Returns the stream and message bytes reinjected.
   */
  dropPath(path: Path, reason: string): number {
    if (!path.alive) return 0;
    const from = path.transition('failed');
    const reinjected = this.retire(path);
    this.control.push({ type: 'path_status', pathId: path.id, state: 'closing', sequence: 1 });
    this.scheduleFlush();
    this.log.info('path dropped', {
      path: path.id,
      from,
      reason,
      reinjected,
      desc: path.describe(),
    });
    this.emit('path', path, 'failed');
    return reinjected;
  }

  /** Keeps what an ending path's controller learned for the next one (pathMetrics). */
  private rememberPath(path: Path, now: number): void {
    this.pathMetrics?.record(
      this.metricsKey(path),
      { ssthresh: path.recovery.learnedSsthresh, resume: path.recovery.learnedResume },
      now,
    );
  }

  private metricsKey(path: Path): string {
    return PathMetricsCache.key(path.kind, path.subflow.localAddress, path.subflow.remoteAddress);
  }

  /** Takes a path out of service and reinjects everything it had outstanding. */
  private retire(path: Path): number {
    this.coupling?.remove(path.recovery);
    this.rememberPath(path, this.clock.now());
    // Bounded memory: old retired paths are forgotten except for their id.
    this.retiredPaths.push(path);
    if (this.retiredPaths.length > KEPT_RETIRED_PATHS) {
      const old = this.retiredPaths.shift()!;
      this.paths.delete(old.id);
      this.retiredPathIds.add(old.id);
    }
    for (const s of this.sessions.values()) s.scheduler.removePath(path.id);
    const outstanding = path.recovery.drainOutstanding();
    let reinjected = 0;
    for (const record of outstanding) {
      if (record.chunks !== null) for (const c of record.chunks) reinjected += c.length;
      if (record.messages !== null) reinjected += record.messages.length;
      this.onLost(record);
    }
    path.reinjectedBytes += reinjected;
    this.live = this.live.filter((p) => p !== path);
    if (!path.subflow.closed) path.subflow.close();
    if (this.live.length === 0 && this.state_ === 'active') {
      this.transition('orphaned');
      this.orphanedAt = this.clock.now();
    }
    this.scheduleFlush();
    return reinjected;
  }

  closePath(path: Path): void {
    if (!path.alive) return;
    this.sendNow(path, [{ type: 'path_status', pathId: path.id, state: 'closing', sequence: 1 }]);
    path.transition('closed');
    this.retire(path);
    this.emit('path', path, 'closed');
  }

  get livePaths(): readonly Path[] {
    return this.live;
  }

  // ------------------------------------------------------------------ receiving

  private onSubflowPacket(path: Path, packet: Buffer): void {
    // Cheap header parse; the wire module validates lengths.
    const decodedHeader = this.parseHeader(packet);
    if (decodedHeader === undefined) return;
    const [header, len] = decodedHeader;
    if (header.pathId !== path.id) {
      path.stats.decryptFailures++;
      return;
    }
    this.receive(path, packet, header, len);
  }

  private parseHeader(packet: Buffer): [PacketHeader, number] | undefined {
    const result = decodeHeader(packet);
    if (!result.ok) return undefined;
    if (!this.id.equals(result.value.header.associationId)) return undefined;
    return [result.value.header, result.value.length];
  }

  /** A packet for `path` whose header was parsed; authenticates and dispatches it. */
  receive(path: Path, packet: Buffer, header: PacketHeader, headerLen: number): void {
    const pn = header.packetNumber;
    if (this.state_ === 'closed') {
      this.answerClosing(path, packet, headerLen, pn);
      return;
    }
    if (!path.alive) return;
    if (path.replay.has(pn)) {
      path.stats.replaysDropped++;
      return;
    }
    const plain = path.protection.open(packet, headerLen, pn);
    if (plain instanceof BraidError) {
      // A forged or damaged packet: dropped without reply, the path keeps running.
      path.stats.decryptFailures++;
      if (this.log.enabled('debug'))
        this.log.debug('packet failed authentication', { path: path.id, pn });
      return;
    }
    path.replay.add(pn);
    const decoded = decodeFrames(plain);
    if (!decoded.ok) {
      // Authentic but undecodable: the peer is broken, not an attacker.
      this.fail(decoded.error, true);
      return;
    }
    const now = this.clock.now();
    path.stats.packetsReceived++;
    path.stats.bytesReceived += packet.length;
    path.lastReceivedAt = now;
    this.lastReceivedAt = now;
    let ackEliciting = false;
    for (const frame of decoded.value) {
      if (isAckEliciting(frame)) ackEliciting = true;
      this.onFrame(path, frame, packet.length);
      // A frame (ERROR, a protocol violation) may have closed the association.
      if (this.isClosed()) return;
    }
    if (path.recovery.onPacketReceived(pn, ackEliciting)) path.ackNow = true;
    if (ackEliciting) path.ackPending = true;
    this.scheduleFlush();
  }

  private onFrame(path: Path, frame: Frame, packetSize: number): void {
    switch (frame.type) {
      case 'padding':
        return;
      case 'stream': {
        const session = this.sessionForPeerFrame(frame.sessionId);
        if (session === undefined) return;
        path.stats.streamBytesReceived += frame.data.length;
        const err = session.onStream(frame.offset, frame.data, frame.fin);
        if (err !== undefined) {
          this.log.warn('session protocol error', { session: session.id, ...errorFields(err) });
          session.abort(err);
        }
        return;
      }
      case 'datagram': {
        const session = this.sessionForPeerFrame(frame.sessionId);
        if (session === undefined) return;
        path.stats.messagesReceived++;
        const err = session.onDatagram(
          frame.messageNumber,
          frame.data,
          this.clock.now(),
          frame.sentAtMicros,
          Association.oneWayDelayMs(path),
        );
        if (err !== undefined) {
          this.log.warn('session protocol error', { session: session.id, ...errorFields(err) });
          session.abort(err);
          return;
        }
        this.noteHeld(session);
        return;
      }
      case 'ack':
        this.onAck(frame.pathId, frame.ranges, frame.ackDelayMicros);
        return;
      case 'open': {
        if (this.isLocalSessionId(frame.sessionId)) {
          this.fail(
            new BraidError('BRAID_ERR_SESSION_STATE', 'peer opened a session with our id', {
              value: frame.sessionId,
            }),
            true,
          );
          return;
        }
        const existing = this.sessions.get(frame.sessionId);
        if (existing !== undefined) {
          if (existing.state === 'awaiting-open') this.peerOpened(existing, frame);
          return;
        }
        const session = this.createPeerSession(frame.sessionId, false);
        if (session === undefined) return;
        this.peerOpened(session, frame);
        return;
      }
      case 'max_data':
        this.sessions.get(frame.sessionId)?.onMaxData(frame.maxOffset);
        return;
      case 'reset':
        this.sessions.get(frame.sessionId)?.fail(
          new BraidError('BRAID_ERR_SESSION_RESET', `peer reset the session: ${frame.reason}`, {
            value: codeName(frame.code),
            peer: this.peer,
          }),
        );
        return;
      case 'close':
        // Reliable-ordered sessions end with FIN in both directions; CLOSE ends a
        // message session's sending half (sent once all its messages were settled).
        this.sessions.get(frame.sessionId)?.onPeerClose();
        return;
      case 'probe':
        path.pending.push({
          type: 'probe_ack',
          probeId: frame.probeId,
          sentAtMicros: frame.sentAtMicros,
          packetSize,
        });
        path.ackNow = true;
        return;
      case 'probe_ack':
        return;
      case 'path_status':
        this.onPathStatus(frame.pathId, frame.state, frame.sequence);
        return;
      case 'feedback':
        this.onFeedback(frame);
        return;
      case 'policy':
        // Like data, a POLICY may overtake its OPEN on a faster path.
        this.sessionForPeerFrame(frame.sessionId)?.onPeerPolicy(frame);
        return;
      case 'join':
        // A retransmitted JOIN for a path we already accepted: answer again.
        if (this.role === 'server' && frame.pathId === path.id && this.secrets.verifyJoin(frame)) {
          path.pending.push({
            type: 'join_ack',
            pathId: path.id,
            maxPacketSize: path.maxPacketSize,
          });
          path.ackNow = true;
        }
        return;
      case 'join_ack':
        if (this.role === 'client' && frame.pathId === path.id && path.state === 'joining') {
          path.transition('active');
          this.log.info('path joined', { path: path.id, desc: path.describe() });
          this.emit('path', path, 'active');
        }
        return;
      case 'error':
        // Code 0 is a graceful close by the peer; anything else is an error it reports.
        this.fail(
          frame.code === 0
            ? undefined
            : new BraidError(
                errorCodeOr(frame.code),
                `peer closed the association: ${frame.reason}`,
                { peer: this.peer },
              ),
          false,
        );
        return;
      case 'hello':
      case 'hello_ack':
        this.fail(
          new BraidError('BRAID_ERR_HANDSHAKE', `${frame.type} on a data path`, { path: path.id }),
          true,
        );
        return;
    }
  }

  /**
   * Smallest one-way delay of a path for the playout clock (message-receiver.ts): half
   * its min RTT, 0 before any RTT sample. Exact on a symmetric path; on an asymmetric
   * one the error is at most half its min RTT.
   */
  private static oneWayDelayMs(path: Path): number {
    const min = path.recovery.minRtt;
    return Number.isFinite(min) ? min / 2 : 0;
  }

  private peerOpened(session: Session, frame: FrameOf<'open'>): void {
    const err = session.opened(
      frame.semantics,
      frame.priorities,
      frame.target,
      frame.deadlineMs,
      frame.policy,
    );
    if (err !== undefined) {
      this.log.warn('session protocol error', { session: session.id, ...errorFields(err) });
      session.abort(err);
      return;
    }
    // A message session takes no STREAM data: the credit it was given at creation is free.
    this.noteCredit(session);
    this.emit('session', session);
    session.replayEarly();
    this.noteHeld(session);
  }

  /** Keeps the set of sessions whose held messages need the playout timer. */
  private noteHeld(session: Session): void {
    const msg = session.msg;
    if (msg === undefined) return;
    if (msg.recv.heldCount > 0) {
      if (!this.heldSessions.has(session)) {
        this.heldSessions.add(session);
        this.armTimer();
      }
    } else {
      this.heldSessions.delete(session);
    }
  }

  /**
   * Tells the peer how to use a path in its own direction: PATH_STATUS standby for an
   * uplink in the backup (or never) role, active otherwise. The peer has no other way
   * to know the client's roles; secondary stays a client-side distinction.
   */
  announceRole(path: Path): void {
    if (!path.alive) return;
    const state: PathState = path.role === 'backup' || path.role === 'never' ? 'standby' : 'active';
    path.statusSequence++;
    this.control.push({
      type: 'path_status',
      pathId: path.id,
      state,
      sequence: path.statusSequence,
    });
    this.scheduleFlush();
  }

  private onPathStatus(pathId: number, state: PathState, sequence: number): void {
    const target = this.paths.get(pathId);
    if (target === undefined || !target.alive) return;
    // A status overtaken by a newer one on a faster path is stale.
    if (state !== 'closing') {
      if (sequence <= target.statusSequence) return;
      target.statusSequence = sequence;
      if (state === 'standby') target.role = 'backup';
      else if (state === 'active') target.role = 'primary';
      this.scheduleFlush();
      return;
    }
    if (state === 'closing') {
      target.transition('closed');
      this.retire(target);
      this.emit('path', target, 'closed');
    }
  }

  private isLocalSessionId(id: number): boolean {
    return (id % 2 === 0) === (this.role === 'client');
  }

  private sessionForPeerFrame(id: number): Session | undefined {
    const existing = this.sessions.get(id);
    if (existing !== undefined) return existing;
    if (this.isLocalSessionId(id)) return undefined;
    // Data overtook its OPEN on a faster path: buffer it until the OPEN arrives.
    return this.createPeerSession(id, true);
  }

  /** Creates a peer-opened session, or returns undefined for one that already finished. */
  private createPeerSession(id: number, awaitingOpen: boolean): Session | undefined {
    if (id <= this.peerIdHigh) {
      if (!this.peerIdsSkipped.delete(id)) return undefined;
    } else {
      if ((id - this.peerIdHigh) / 2 > MAX_SKIPPED_PEER_IDS) {
        this.fail(
          new BraidError('BRAID_ERR_SESSION_STATE', 'peer skipped too many session ids', {
            value: id,
            peer: this.peer,
          }),
          true,
        );
        return undefined;
      }
      for (let skipped = this.peerIdHigh + 2; skipped < id; skipped += 2)
        this.peerIdsSkipped.add(skipped);
      this.peerIdHigh = id;
    }
    const session = new Session(
      {
        id,
        semantics: 'reliable-ordered',
        priorities: ['loss', 'throughput'],
        target: '',
        maxMessageSize: this.maxMessageSize,
        now: this.clock.now(),
        window: this.config.sessionWindow,
        initialCredit: this.creditForNewSession(),
        sendBufferLimit: this.config.sendBufferLimit,
        local: false,
        awaitingOpen,
      },
      this,
    );
    this.sessions.set(id, session);
    this.noteCredit(session);
    // Its MAX_DATA (our receive window) goes out with the next packet.
    this.wake(session);
    return session;
  }

  private onAck(
    pathId: number,
    ranges: readonly { first: number; last: number }[],
    ackDelayMicros: number,
  ): void {
    const target = this.paths.get(pathId);
    if (target === undefined || !target.alive) return;
    const result = target.recovery.onAck(ranges, ackDelayMicros);
    if (result instanceof BraidError) {
      this.fail(result, true);
      return;
    }
    // One clock read per ACK frame, not per acknowledged chunk (hot path).
    const now = this.clock.now();
    target.estimator.onAck(
      now,
      target.recovery,
      result.acked.length,
      result.lost.length - result.startupLost,
      result.rttSample,
    );
    if (result.acked.length > 0 && target.state === 'suspect') {
      target.transition('active');
      this.log.info('path recovered', { path: target.id });
      this.emit('path', target, 'active');
    }
    for (const record of result.acked) {
      const chunks = record.chunks;
      if (chunks !== null)
        for (let i = 0; i < chunks.length; i++) target.stats.streamBytesAcked += chunks[i]!.length;
      this.onAcked(record, now);
    }
    for (const record of result.lost) this.onLost(record);
    this.freeSendRoom();
  }

  private onAcked(record: SentRecord, now: number): void {
    const messages = record.messages;
    if (messages !== null) {
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!;
        const session = m.session;
        const wasWritable = session.writableNow;
        if (session.msg !== undefined && !session.msg.send.reliable) {
          session.guard.onLoss(now, 0, 1);
        }
        session.guard.onDelivered(now, 1);
        session.msg?.send.onAcked(m.number);
        session.afterAck(wasWritable);
      }
    }
    const control = record.control;
    if (control !== null) {
      for (const frame of control) {
        if (frame.type === 'close') this.sessions.get(frame.sessionId)?.closeAcked();
      }
    }
    const chunks = record.chunks;
    if (chunks === null) return;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!;
      const session = c.session;
      const wasWritable = session.writableNow;
      session.guard.onDelivered(now, c.length);
      session.send.onAcked(c.offset, c.length, c.fin);
      session.afterAck(wasWritable);
    }
  }

  /** Repairs a lost packet: its stream ranges and control frames go back to the queue (reinjection). */
  private onLost(record: SentRecord): void {
    const messages = record.messages;
    if (messages !== null) {
      const now = this.clock.now();
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!;
        const queue = m.session.msg?.send;
        if (m.session.isDone || queue === undefined) continue;
        if (!queue.reliable) m.session.guard.onLoss(now, 1, 1);
        const wasWritable = m.session.writableNow;
        queue.onLost(m.number);
        // An unreliable message's bytes left the send buffer when it was sent; no ACK
        // will report that now, so the loss does.
        m.session.sendSettled(wasWritable);
        // A repair to send, or (unreliable) maybe the CLOSE that waited for this.
        this.wake(m.session);
      }
    }
    const chunks = record.chunks;
    if (chunks !== null) {
      for (let i = 0; i < chunks.length; i++) {
        const c: SentChunk = chunks[i]!;
        if (c.session.isDone) continue;
        c.session.send.onLost(c.offset, c.length, c.fin);
        this.wake(c.session);
      }
    }
    const control = record.control;
    if (control !== null) {
      for (const frame of control) {
        if (frame.type === 'open') {
          const s = this.sessions.get(frame.sessionId);
          if (s !== undefined && !s.isDone) {
            s.openPending = true;
            this.wake(s);
          }
        } else if (frame.type === 'max_data') {
          const s = this.sessions.get(frame.sessionId);
          if (s !== undefined && !s.isDone) this.sendMaxData(s);
        } else if (frame.type === 'policy') {
          // Resent only while it is the session's newest rule.
          const again = this.sessions.get(frame.sessionId)?.policyFrame(frame.sequence);
          if (again !== undefined) this.control.push(again);
        } else {
          this.control.push(frame);
        }
      }
    }
  }

  // ------------------------------------------------------------------- sending

  scheduleFlush(): void {
    if (this.flushScheduled || this.state_ === 'closed') return;
    this.flushScheduled = true;
    setImmediate(this.flushCallback);
  }

  private flushNow(): void {
    this.flushScheduled = false;
    if (this.state_ === 'closed') return;
    // Each path's packets of this flush leave together at the end (Subflow.cork): on
    // UDP in runs of one system call, which is most of a packet's sending cost.
    const corked = this.live;
    for (let i = 0; i < corked.length; i++) corked[i]!.subflow.cork();
    try {
      this.fillPaths();
    } finally {
      for (let i = 0; i < corked.length; i++) corked[i]!.subflow.uncork();
    }
  }

  /** flushNow's work: builds and sends what the paths may carry now. */
  private fillPaths(): void {
    const now = this.clock.now();
    if (this.drained.length > 0) this.checkIdleTails(now);
    let sent = 0;
    this.schedRetryAt = Infinity;
    let live = this.live;
    let tiers = roleTiers(live, isUsable);
    let candidates = live.map(viewOf);
    while (sent < MAX_PACKETS_PER_FLUSH && this.hasData()) {
      if (live !== this.live) {
        // A send killed a path (its interface vanished mid-write): new candidates.
        live = this.live;
        tiers = roleTiers(live, isUsable);
        candidates = live.map(viewOf);
      }
      let path: Path | undefined;
      let copies = 0;
      let deferred = 0;
      if (this.control.length > 0 || this.ready.length === 0) {
        // Session-control frames go on any path that may send.
        path = pickByRole(tiers, now);
        if (path === undefined) break;
        const before = path.stats.bytesSent;
        if (!this.sendPacket(path, now, true)) break;
        chargePath(path, path.stats.bytesSent - before);
        sent++;
        continue;
      }
      this.refreshViews(live, tiers, now);
      // Each ready session's own scheduler picks the path for its next packet (its
      // objectives, DESIGN §3); a session whose scheduler says "not now" (window
      // closed, ECF waiting for a faster path) lets the next one go.
      for (let tries = this.ready.length; tries > 0 && path === undefined; tries--) {
        if (this.readyRr >= this.ready.length) this.readyRr = 0;
        const session = this.ready[this.readyRr]!;
        if (session.isDone) {
          this.unready(this.readyRr);
          continue;
        }
        const ctx = this.schedContext;
        ctx.semantics = session.semantics;
        ctx.backlogBytes = session.backlogBytes;
        ctx.repair = session.repairPending;
        // -1 while striping; the best single path while striping does worse.
        ctx.onlyPathId = session.guard.singlePathId;
        const d = session.scheduler.pick(ctx, candidates, this.config.udpPacketSize, now);
        if (d.index >= 0) {
          path = live[d.index];
          copies = d.duplicateCount;
          for (let k = 0; k < copies; k++) this.copyTargets[k] = live[d.duplicates[k]!]!;
          deferred = d.deferredCount;
          for (let k = 0; k < deferred; k++) this.deferTargets[k] = live[d.deferred[k]!]!;
        } else {
          if (d.retryAt < this.schedRetryAt) this.schedRetryAt = d.retryAt;
          this.readyRr++;
        }
      }
      if (path === undefined) break;
      if (!this.sendPacket(path, now, true)) break;
      sent++;
      const messages = this.lastMessages;
      if (copies > 0 && messages !== null) {
        for (let k = 0; k < copies; k++) this.sendCopies(this.copyTargets[k]!, messages, now);
      }
      if (deferred > 0 && messages !== null) {
        for (let k = 0; k < deferred; k++) this.deferCopies(this.deferTargets[k]!, messages);
      }
    }
    for (const p of this.live) if (p.copyDebt.length > 0) this.sendCopyDebt(p, now);
    for (const path of this.live) {
      if (path.probesDue > 0 && path.state !== 'joining') {
        path.probesDue--;
        path.pending.push({
          type: 'probe',
          probeId: path.stats.packetsSent,
          sentAtMicros: Math.round(now * 1000),
        });
      }
      const ackDue = path.ackPending && (path.recovery.ackDeadline() ?? Infinity) <= now;
      if (path.pending.length > 0 || path.ackNow || ackDue) this.sendPacket(path, now, false);
    }
    if (sent === MAX_PACKETS_PER_FLUSH) this.scheduleFlush();
    this.armTimer();
  }

  /** Fills each path's scheduler view; roles decide which paths are offered at all. */
  private refreshViews(live: readonly Path[], tiers: RoleTiers<Path>, now: number): void {
    // Secondaries only when no primary has window room (see pickByRole).
    const secondaryOk = !hasRoom(tiers.primary);
    for (let i = 0; i < live.length; i++) {
      const p = live[i]!;
      fillPathView(p.view, p, p.recovery, p.estimator, p.role, now);
      if (
        (p.role === 'secondary' && !secondaryOk) ||
        // roleTiers offers either every backup path or none.
        (p.role === 'backup' && tiers.backup.length === 0)
      ) {
        p.view.usable = false;
      }
    }
  }

  /**
   * Loss objective for unreliable sessions: the messages just sent go once more on
   * another path, each copy in a packet of its own tracked like any other.
   */
  private sendCopies(
    path: Path,
    messages: readonly SentMessage[],
    now: number,
    owed = false,
  ): void {
    if (!path.usable) return;
    const buf = this.scratch;
    const budgetEnd = payloadBudgetEnd(path);
    let pos = HEADER_ROOM;
    const copied: SentMessage[] = [];
    for (const m of messages) {
      const queue = m.session.msg?.send;
      // An owed copy goes even when its original was declared lost meanwhile.
      const out = owed ? queue?.owedCopy(m.number, now) : queue?.unsettled(m.number);
      if (queue === undefined || out === undefined) continue;
      if (out.data.length + DATAGRAM_FRAME_OVERHEAD_MAX > budgetEnd - pos) break;
      pos = encodeFrame(
        {
          type: 'datagram',
          sessionId: m.session.id,
          messageNumber: m.number,
          sentAtMicros: out.sentAtMicros,
          data: out.data,
        },
        buf,
        pos,
      );
      queue.duplicated(out);
      copied.push(m);
      path.stats.messagesSent++;
    }
    this.lastCopied = copied.length;
    if (copied.length === 0) return;
    this.sealAndSend(path, buf, pos, true, { chunks: null, control: null, messages: copied }, now);
  }

  /** Copies owed to `path` (its window was shut when their messages went): kept, bounded. */
  private deferCopies(path: Path, messages: readonly SentMessage[]): void {
    const debt = path.copyDebt;
    for (const m of messages) {
      m.session.msg?.send.oweCopy(m.number);
      debt.push(m);
    }
    if (debt.length > MAX_COPY_DEBT) debt.splice(0, debt.length - MAX_COPY_DEBT);
  }

  /**
   * Sends what `path` owes while its window and pacer let it: messages already
   * acknowledged on their first path need no copy (unsettled() is gone for them).
   */
  private sendCopyDebt(path: Path, now: number): void {
    if (!path.usable) {
      path.copyDebt = [];
      return;
    }
    while (path.copyDebt.length > 0) {
      const r = path.recovery;
      if (r.sendAllowance() <= 0 || r.nextSendTime(path.maxPacketSize, now) > now) return;
      const batch = path.copyDebt.filter(
        (m) => !m.session.isDone && m.session.msg?.send.owedCopy(m.number, now) !== undefined,
      );
      path.copyDebt = [];
      if (batch.length === 0) return;
      const before = path.stats.packetsSent;
      this.sendCopies(path, batch, now, true);
      // sendCopies fills one packet; what did not fit stays owed.
      const sent = path.stats.packetsSent > before ? this.lastCopied : 0;
      if (sent < batch.length) path.copyDebt = batch.slice(sent);
      if (sent === 0) return;
    }
  }

  private hasData(): boolean {
    return this.control.length > 0 || this.ready.length > 0;
  }

  /** Sends path-specific frames (JOIN, PATH_STATUS) on `path` right away. */
  private sendNow(path: Path, frames: Frame[]): void {
    for (const f of frames) path.pending.push(f);
    this.sendPacket(path, this.clock.now(), false);
  }

  /**
   * Builds and sends one packet on `path`: its ACK, its own pending frames, session
   * control, and (if `withData`) stream data up to the packet size. A `closing` packet
   * (fail) carries every path's ACK. Returns false when there was nothing to put in it.
   */
  private sendPacket(path: Path, now: number, withData: boolean, closing = false): boolean {
    const buf = this.scratch;
    const budgetEnd = payloadBudgetEnd(path);
    let pos = HEADER_ROOM;
    let ackEliciting = false;
    let chunks: SentChunk[] | null = null;
    let control: Frame[] | null = null;

    if (path.ackPending || path.ackNow || closing) pos = this.writeAck(path, buf, pos, budgetEnd);
    // ACKs may travel on any path (DESIGN §3): those of a suspect path ride here, so
    // the peer learns what arrived on it even when its return direction is broken.
    // Each closing packet carries every path's: the first to arrive closes the peer's
    // end, and what it had sent last (a FIN) may have come in on another path, whose
    // own closing packet is still on its way (the peer's stream then failed at a close
    // after both ends had finished).
    if (path.state === 'active' || closing) {
      for (const other of this.live) {
        if (other === path) continue;
        if (closing || (other.state === 'suspect' && (other.ackPending || other.ackNow)))
          pos = this.writeAck(other, buf, pos, budgetEnd);
      }
    }
    while (path.pending.length > 0) {
      const f = path.pending[0]!;
      if (frameLength(f) > budgetEnd - pos) break;
      path.pending.shift();
      pos = encodeFrame(f, buf, pos);
      if (isAckEliciting(f)) ackEliciting = true;
    }
    if (withData && path.state === 'active') {
      while (this.control.length > 0 && frameLength(this.control[0]!) <= budgetEnd - pos) {
        const f = this.control.shift()!;
        pos = encodeFrame(f, buf, pos);
        (control ??= []).push(f);
        ackEliciting = true;
      }
      while (this.ready.length > 0 && budgetEnd - pos > STREAM_FRAME_OVERHEAD_MAX) {
        if (this.readyRr >= this.ready.length) this.readyRr = 0;
        const session = this.ready[this.readyRr]!;
        if (session.isDone) {
          this.unready(this.readyRr);
          continue;
        }
        if (session.openPending) {
          const open: Frame = {
            type: 'open',
            sessionId: session.id,
            semantics: session.semantics,
            priorities: session.priorities,
            target: session.target,
            deadlineMs: session.deadlineMs,
            policy: session.openPolicy,
          };
          if (frameLength(open) > budgetEnd - pos) break;
          pos = encodeFrame(open, buf, pos);
          session.openPending = false;
          (control ??= []).push(open);
          ackEliciting = true;
        }
        if (session.maxDataPending) {
          const md: Frame = {
            type: 'max_data',
            sessionId: session.id,
            maxOffset: session.recv.advertisedOffset,
          };
          if (frameLength(md) > budgetEnd - pos) break;
          pos = encodeFrame(md, buf, pos);
          session.maxDataPending = false;
          (control ??= []).push(md);
          ackEliciting = true;
        }
        if (session.msg !== undefined) {
          const before = pos;
          pos = this.writeMessages(session, path, buf, pos, budgetEnd, now);
          if (pos !== before) ackEliciting = true;
          if (session.closeDue) {
            const close: Frame = { type: 'close', sessionId: session.id, code: 0, reason: '' };
            if (frameLength(close) > budgetEnd - pos) break;
            pos = encodeFrame(close, buf, pos);
            session.closeSent = true;
            (control ??= []).push(close);
            ackEliciting = true;
          }
          if (!session.msg.send.hasPending && !session.closeDue) {
            this.unready(this.readyRr);
            continue;
          }
          // The next message does not fit: this packet is full.
          break;
        }
        // Every range starts below writeOffset (a bare FIN at it), and is shorter than the room.
        const room = budgetEnd - pos;
        const range = session.send.nextRange(
          room - streamFrameHeaderLength(session.id, session.send.writeOffset, room),
        );
        if (range === undefined) {
          this.unready(this.readyRr);
          continue;
        }
        pos = writeStreamFrameHeader(buf, pos, session.id, range.offset, range.fin, range.length);
        session.send.copy(range.offset, range.length, buf, pos);
        pos += range.length;
        (chunks ??= []).push({
          session,
          offset: range.offset,
          length: range.length,
          fin: range.fin,
        });
        path.stats.streamBytesSent += range.length;
        session.bytesByPath.set(path.id, (session.bytesByPath.get(path.id) ?? 0) + range.length);
        ackEliciting = true;
        if (!session.tailChecked && !session.send.hasPending)
          this.noteTail(session, range.fin, now);
        if (!session.send.hasPending && !session.openPending && !session.maxDataPending)
          this.unready(this.readyRr);
      }
      // The next packet starts with the next ready session, so that a bulk stream does
      // not hold back the message sessions queued behind it.
      this.readyRr++;
    }
    if (pos === HEADER_ROOM) return false;
    if (path.probesDue > 0 && ackEliciting) path.probesDue--;
    const messages = this.sentMessages;
    this.sentMessages = null;
    this.lastMessages = messages;
    this.sealAndSend(path, buf, pos, ackEliciting, { chunks, control, messages }, now);
    if (this.tailDue !== null) {
      const due = this.tailDue;
      this.tailDue = null;
      for (const s of due) this.reinjectTail(s, now);
    }
    return true;
  }

  /** Sessions whose FIN went into the packet being built (reinjectTail once it is sent). */
  private tailDue: Session[] | null = null;

  /**
   * Streams whose send buffer emptied without a FIN: a response on a kept-alive
   * connection, the end of a burst. What the application wrote so far waits on its last
   * bytes just as at a FIN, but the application may be about to write more (a bulk
   * source slower than the paths empties the buffer between its writes), so the tail is
   * looked at only once the buffer stayed empty for IDLE_TAIL_MS (checkIdleTails).
   */
  private drained: Session[] = [];

  /** `session` just sent all it had: its FIN (tail now), or the end of a burst (idle tail). */
  private noteTail(session: Session, fin: boolean, now: number): void {
    if (fin) (this.tailDue ??= []).push(session);
    else if (session.drainedAt < 0) {
      session.drainedAt = now;
      this.drained.push(session);
    }
  }

  /** Reinjects the tails of streams whose send buffer stayed empty for IDLE_TAIL_MS. */
  private checkIdleTails(now: number): void {
    let kept = 0;
    for (const s of this.drained) {
      // A write or the end since (drainedAt reset), or a session gone: not a tail now.
      if (s.drainedAt < 0 || s.isDone) continue;
      if (s.drainedAt + IDLE_TAIL_MS > now) {
        this.drained[kept++] = s;
        continue;
      }
      s.drainedAt = -1;
      if (!s.tailChecked && !s.send.hasPending) this.reinjectTail(s, now);
    }
    this.drained.length = kept;
  }

  /**
   * The end of a stream (its FIN) or of a burst (checkIdleTails) went out with nothing
   * else left to send: the transfer or the response completes when its last byte
   * arrives, and bytes still in flight on a slower path
   * arrive after what the fastest path could deliver now. Those bytes are queued once
   * more (as repairs, so they go on the path where they arrive first); the receiver
   * keeps whichever copy comes first. This is opportunistic reinjection at the tail
   * (Raiciu et al., NSDI 2012; the tail case of ECF/BLEST): in the lab's 1 MB
   * downloads the last bytes trailed on LTE (60 ms, 10 ms jitter) or the tether
   * (100 ms) behind an idle Wi-Fi. Done once per tail, costing at most what the
   * slower paths had in flight of it.
   */
  private reinjectTail(session: Session, now: number): void {
    session.tailChecked = true;
    let fast: Path | undefined;
    for (const p of this.live) {
      if (p.usable && (fast === undefined || p.recovery.srtt < fast.recovery.srtt)) fast = p;
    }
    if (fast === undefined) return;
    // A copy sent now queues behind what the fastest path already carries, and behind
    // the copies before it (path-view.ts deliveryBehindFlightMs, as ECF reckons).
    const f = fast.recovery;
    fillPathView(fast.view, fast, f, fast.estimator, fast.role, now);
    let queued = 0;
    for (const p of this.live) {
      const r = p.recovery;
      if (p === fast || r.srtt <= f.srtt) continue;
      r.forEachOutstanding((record, sentAt) => {
        const chunks = record.chunks;
        if (chunks === null) return;
        // Data reaches the peer about when its ACK leaves: an srtt after it was sent,
        // less the ACK's way back.
        const fastArrival = now + deliveryBehindFlightMs(fast.view, queued + 1, true);
        if (sentAt + r.srtt - r.minRtt / 2 <= fastArrival) return;
        for (let i = 0; i < chunks.length; i++) {
          const c = chunks[i]!;
          if (c.session !== session) continue;
          session.send.onLost(c.offset, c.length, c.fin);
          queued += c.length;
        }
      });
    }
    if (queued === 0) return;
    session.tailReinjectedBytes += queued;
    this.log.debug('tail: reinjecting what slower paths carry', {
      session: session.id,
      bytes: queued,
      fastest: fast.id,
    });
    this.wake(session);
  }

  /** Adds the header to the payload in `buf[HEADER_ROOM, end)`, seals, records and sends it. */
  private sealAndSend(
    path: Path,
    buf: Buffer,
    end: number,
    ackEliciting: boolean,
    record: SentRecord,
    now: number,
  ): void {
    const payloadLength = end - HEADER_ROOM;
    const pn = path.recovery.nextPacketNumber();
    const hl = headerLength(path.id, pn);
    if (payloadLength + hl + TAG_LENGTH > path.maxPacketSize)
      throw new BraidError('BRAID_ERR_INTERNAL', 'packet built past its path size', {
        path: path.id,
        value: payloadLength + hl + TAG_LENGTH,
      });
    const start = HEADER_ROOM - hl;
    writeHeader(buf, start, this.id, path.id, pn);
    const parts = path.protection.sealParts(buf.subarray(start, end), hl, payloadLength, pn);
    const sealedLength = parts[0].length + parts[1].length + parts[2].length;
    // JOIN retransmissions are timed by the join logic, not by loss recovery.
    const inFlight = ackEliciting && path.state !== 'joining';
    // Recorded before the transport sees it: a send that kills the path (the interface
    // vanished mid-write) then finds this packet among the outstanding ones to reinject.
    path.recovery.onPacketSent(pn, sealedLength, inFlight, record);
    if (!path.subflow.sendParts(parts)) path.blocked = true;
    path.stats.packetsSent++;
    path.stats.bytesSent += sealedLength;
    path.lastSentAt = now;
  }

  /** Writes as many of a message session's queued messages as fit, one DATAGRAM frame each. */
  private writeMessages(
    session: Session,
    path: Path,
    buf: Buffer,
    pos: number,
    budgetEnd: number,
    now: number,
  ): number {
    const queue = session.msg!.send;
    let m = queue.peek(budgetEnd - pos - DATAGRAM_FRAME_OVERHEAD_MAX, now);
    while (m !== undefined) {
      pos = encodeFrame(
        {
          type: 'datagram',
          sessionId: session.id,
          messageNumber: m.number,
          sentAtMicros: m.sentAtMicros,
          data: m.data,
        },
        buf,
        pos,
      );
      queue.taken(m);
      (this.sentMessages ??= []).push({ session, number: m.number });
      path.stats.messagesSent++;
      session.bytesByPath.set(path.id, (session.bytesByPath.get(path.id) ?? 0) + m.data.length);
      m = queue.peek(budgetEnd - pos - DATAGRAM_FRAME_OVERHEAD_MAX, now);
    }
    return pos;
  }

  private writeAck(path: Path, buf: Buffer, pos: number, budgetEnd: number): number {
    const ack = path.recovery.buildAck(path.id);
    path.ackPending = false;
    path.ackNow = false;
    if (ack === undefined) return pos;
    if (frameLength(ack) > budgetEnd - pos) {
      path.ackNow = true;
      return pos;
    }
    return encodeFrame(ack, buf, pos);
  }

  private unready(index: number): void {
    const session = this.ready[index]!;
    this.readySet.delete(session);
    this.ready.splice(index, 1);
  }

  // -------------------------------------------------------------------- timers

  private armTimer(): void {
    if (this.state_ === 'closed') return;
    let at = Infinity;
    const now = this.clock.now();
    const dataWaiting = this.hasData();
    for (const path of this.live) {
      if (path.state === 'joining') {
        at = Math.min(
          at,
          path.joinLastSentAt + this.config.joinRetryMs,
          path.joinStartedAt + this.config.joinTimeoutMs,
        );
        continue;
      }
      const t = path.recovery.timerDeadline();
      if (t !== undefined && t < at) at = t;
      if (path.ackPending) {
        const a = path.recovery.ackDeadline();
        if (a !== undefined && a < at) at = a;
      }
      if (dataWaiting && path.usable && path.recovery.sendAllowance() > 0) {
        const p = path.recovery.nextSendTime(path.maxPacketSize, now);
        if (p > now && p < at) at = p;
      }
      at = Math.min(at, path.lastSentAt + this.config.keepaliveMs);
    }
    for (const s of this.heldSessions) at = Math.min(at, s.msg!.recv.nextDeadline);
    if (this.sessions.size > 0) at = Math.min(at, this.nextTickAt);
    if (dataWaiting && this.schedRetryAt > now) at = Math.min(at, this.schedRetryAt);
    for (const s of this.drained)
      if (s.drainedAt >= 0) at = Math.min(at, s.drainedAt + IDLE_TAIL_MS);
    at = Math.min(at, this.lastReceivedAt + this.config.idleTimeoutMs);
    if (this.state_ === 'orphaned') at = Math.min(at, this.orphanedAt + this.config.idleTimeoutMs);
    if (at >= this.timerAt - 0.25 && this.timer !== undefined) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.timerCallback, Math.max(0, at - now));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.state_ === 'closed') return;
    const now = this.clock.now();
    if (now - this.lastReceivedAt >= this.config.idleTimeoutMs) {
      this.fail(
        new BraidError('BRAID_ERR_PATH_FAILED', 'peer silent for the idle timeout', {
          peer: this.peer,
          value: this.config.idleTimeoutMs,
        }),
        true,
      );
      return;
    }
    if (this.state_ === 'orphaned' && now - this.orphanedAt >= this.config.idleTimeoutMs) {
      this.fail(
        new BraidError('BRAID_ERR_NO_PATH', 'no path left to the peer', { peer: this.peer }),
        false,
      );
      return;
    }
    if (now >= this.nextTickAt) this.tick(now);
    for (const s of [...this.heldSessions]) {
      if (s.msg!.recv.nextDeadline <= now) {
        s.onMessageTimer(now);
        this.noteHeld(s);
      }
    }
    for (const path of [...this.live]) {
      if (path.state === 'joining') {
        if (now - path.joinStartedAt >= this.config.joinTimeoutMs) {
          this.pathDied(
            path,
            new BraidError('BRAID_ERR_JOIN_REJECTED', 'no JOIN_ACK before the join timeout', {
              path: path.id,
              value: path.describe(),
            }),
          );
        } else if (now - path.joinLastSentAt >= this.config.joinRetryMs) {
          this.sendJoin(path, now);
        }
        continue;
      }
      const deadline = path.recovery.timerDeadline();
      if (deadline !== undefined && deadline <= now) {
        const result = path.recovery.onTimer();
        path.estimator.onLost(now, result.lost.length - result.startupLost);
        for (const record of result.lost) this.onLost(record);
        if (result.lost.length > 0) this.freeSendRoom();
        if (result.probe > 0) path.probesDue += result.probe;
        // Paper §III-B: a TCP path with no ACK progress suspects head-of-line blocking in
        // the transport; a UDP path whose second probe timeout passes unanswered is as
        // good as gone. Either way its data moves to the other paths now, and the path
        // keeps being probed until it answers again.
        const unanswered = path.kind === 'udp' && path.recovery.probeTimeouts >= 2;
        if ((result.stalled || unanswered) && path.state === 'active') this.suspect(path);
      }
      if (now - path.lastSentAt >= this.config.keepaliveMs)
        path.probesDue = Math.max(path.probesDue, 1);
    }
    this.flushNow();
  }

  /**
   * Every TICK_MS: each session's never-worse guard compares the striped session
   * with the best single path (and pins the session to it, or lets it stripe again),
   * and the discordance monitor samples whether one path is best for two objectives.
   */
  private tick(now: number): void {
    this.nextTickAt = now + TICK_MS;
    const live = this.live;
    if (live.length === 0) return;
    const tiers = roleTiers(live, isUsable);
    this.refreshViews(live, tiers, now);
    const views = live.map(viewOf);
    if (this.guardScratch.length < views.length)
      this.guardScratch = new Uint8Array(views.length * 2);
    this.discordance.sample(now, views);
    // A path that only receives (a download's client side) sends nothing but ACKs and
    // so never measures its RTT: a probe a second keeps its figures alive for the
    // dashboard and the schedulers, at well under 1 kbit/s (DESIGN §3, idle probing).
    for (const p of live) {
      if (p.state === 'active' && now - p.recovery.lastAckElicitingSentAt >= RTT_REFRESH_MS)
        p.probesDue = Math.max(p.probesDue, 1);
    }
    for (const session of this.sessions.values()) {
      if (session.isDone) continue;
      const ctx = this.schedContext;
      ctx.semantics = session.semantics;
      ctx.backlogBytes = session.backlogBytes;
      ctx.repair = false;
      ctx.onlyPathId = -1;
      NeverWorseGuard.bestSingle(
        session.guardObjective,
        ctx,
        views,
        this.guardScratch,
        this.bestSingle,
      );
      if (session.semantics === 'reliable-ordered') this.watchHeadOfLine(session, live, now);
      const before = session.guard.mode;
      const mode = session.guard.evaluate(now, this.bestSingle, session.backlogBytes === 0);
      if (mode !== before) {
        this.log.info('never-worse guard', {
          session: session.id,
          mode,
          path: session.guard.singlePathId,
        });
      }
    }
  }

  /**
   * A reliable-ordered session whose acknowledged prefix has not moved for several RTTs
   * of the fastest path, while later bytes were acknowledged, is blocked at the
   * receiver by data on a slow path: a path that still answers, so it is never
   * suspect, but whose queue grew to seconds (lab scenario f: LTE fell to 0.3 Mbit/s
   * and 400 ms while BBR kept 200 KB in flight on it; the app waited 1.3-3.3 s with
   * Wi-Fi idle-ready). The gap goes out again on whichever path the scheduler picks.
   */
  private watchHeadOfLine(session: Session, live: readonly Path[], now: number): void {
    const send = session.send;
    if (session.isDone || send.ackedPrefix >= send.nextOffset) {
      session.holPrefix = send.ackedPrefix;
      session.holSince = now;
      return;
    }
    if (send.ackedPrefix !== session.holPrefix) {
      session.holPrefix = send.ackedPrefix;
      session.holSince = now;
      return;
    }
    let fastest = Infinity;
    for (const p of live)
      if (p.state === 'active' && p.recovery.srtt < fastest) fastest = p.recovery.srtt;
    if (!Number.isFinite(fastest)) return;
    if (now - session.holSince < Math.max(HOL_MIN_MS, HOL_RTTS * fastest)) return;
    const queued = send.reinjectHead(HOL_REINJECT_BYTES);
    session.holSince = now;
    if (queued === 0) return;
    session.holReinjectedBytes += queued;
    this.log.debug('head-of-line: reinjecting the stuck gap', {
      session: session.id,
      offset: send.ackedPrefix,
      bytes: queued,
    });
    this.wake(session);
  }

  private suspect(path: Path): void {
    path.transition('suspect');
    this.log.warn('path suspect: reinjecting its data', { path: path.id, desc: path.describe() });
    for (const record of path.recovery.drainOutstanding()) {
      if (record.chunks !== null) for (const c of record.chunks) path.reinjectedBytes += c.length;
      this.onLost(record);
    }
    path.probesDue = Math.max(path.probesDue, 1);
    this.emit('path', path, 'suspect');
  }

  // ------------------------------------------------------------------- closing

  /**
   * Closes the association; sessions still open are reset. Without an error this is
   * the application's own decision, and its streams close without an error event
   * (as `socket.destroy()` does); with one, they fail with it.
   */
  close(error?: BraidError): void {
    this.fail(error, true, error === undefined);
  }

  private fail(error: BraidError | undefined, tellPeer: boolean, byApplication = false): void {
    if (this.state_ === 'closed') return;
    const told = new Set<Path>();
    let frame: Frame | undefined;
    if (tellPeer) {
      frame =
        error === undefined
          ? { type: 'error', code: 0, reason: 'closed' }
          : { type: 'error', code: error.wireCode, reason: error.message.slice(0, 200) };
      for (const path of this.live) {
        if (path.state === 'active' || path.state === 'suspect') {
          path.pending.length = 0;
          path.pending.push(frame);
          this.sendPacket(path, this.clock.now(), false, true);
          if (path.kind === 'udp' && !path.subflow.closed) told.add(path);
        }
      }
    }
    this.closeError = error;
    this.transition('closed');
    if (error !== undefined) this.log.warn('association closed', errorFields(error));
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const sessionError =
      error ??
      new BraidError('BRAID_ERR_ASSOCIATION_CLOSED', 'association closed', { peer: this.peer });
    for (const session of [...this.sessions.values()]) session.fail(sessionError, byApplication);
    const now = this.clock.now();
    let closingMs = 0;
    for (const path of this.live) {
      if (path.alive) path.transition('closed');
      if (told.has(path)) closingMs = Math.max(closingMs, 3 * path.recovery.probeTimeoutMs);
      else path.subflow.close();
      this.rememberPath(path, now);
    }
    this.live = [];
    if (frame !== undefined && told.size > 0) this.startClosing(frame, told, closingMs);
    this.emit('closed', error);
    if (this.closing === undefined) this.emit('released');
  }

  /** Keeps `paths` open to answer late packets with `frame` (see ClosingState). */
  private startClosing(frame: Frame, paths: Set<Path>, ms: number): void {
    const period = Math.min(CLOSING_MAX_MS, Math.max(CLOSING_MIN_MS, ms));
    const timer = setTimeout(() => this.endClosing(), period);
    // A closing association does not keep the process alive.
    timer.unref();
    this.closing = { frame, paths, nextAnswer: new Map(), timer };
    for (const path of paths) {
      path.subflow.onDrain = () => undefined;
      path.subflow.onClose = () => {
        this.closing?.paths.delete(path);
        if (this.closing?.paths.size === 0) this.endClosing();
      };
    }
  }

  private endClosing(): void {
    const closing = this.closing;
    if (closing === undefined) return;
    this.closing = undefined;
    clearTimeout(closing.timer);
    for (const path of closing.paths) path.subflow.close();
    this.emit('released');
  }

  /**
   * A packet that arrived after the close: if it is authentic, the peer has not
   * learned of the close yet, and `path` sends it again (rate-limited); if it carries
   * the peer's own close, the closing period ends.
   */
  private answerClosing(path: Path, packet: Buffer, headerLen: number, pn: number): void {
    const closing = this.closing;
    if (closing === undefined || !closing.paths.has(path) || path.replay.has(pn)) return;
    const plain = path.protection.open(packet, headerLen, pn);
    if (plain instanceof BraidError) {
      path.stats.decryptFailures++;
      return;
    }
    path.replay.add(pn);
    const decoded = decodeFrames(plain);
    if (decoded.ok && decoded.value.some((f) => f.type === 'error')) {
      // The peer closed too: nothing more to tell it (RFC 9000 §10.2.2, draining).
      this.endClosing();
      return;
    }
    const now = this.clock.now();
    const next = closing.nextAnswer.get(path) ?? { at: now, gap: CLOSING_ANSWER_MIN_MS };
    if (now < next.at) return;
    closing.nextAnswer.set(path, { at: now + next.gap, gap: next.gap * 2 });
    path.pending.length = 0;
    path.pending.push(closing.frame);
    this.sendPacket(path, now, false, true);
    this.closingAnswers++;
  }

  // ---------------------------------------------------------------- inspection

  /** Largest reorder buffer and send queue of any session so far (bytes), against their bounds. */
  readonly peaks = {
    reorderBytes: 0,
    sendQueueBytes: 0,
    associationReceiveBytes: 0,
    associationSendBytes: 0,
  };

  private notePeaks(s: Session): void {
    const p = this.peaks;
    p.reorderBytes = Math.max(p.reorderBytes, s.recv.peakBufferedBytes);
    const send = s.msg !== undefined ? s.msg.send.peakBytes : s.send.peakBufferedBytes;
    p.sendQueueBytes = Math.max(p.sendQueueBytes, send);
  }

  /**
   * The peaks with the sessions still open counted in, and the configured bounds:
   * the reorder buffer never exceeds `sessionWindow`, and a send queue exceeds
   * `sendBufferLimit` by at most one application write.
   */
  bufferPeaks(): {
    reorderBytes: number;
    sendQueueBytes: number;
    associationReceiveBytes: number;
    associationSendBytes: number;
    reorderBound: number;
    sendBound: number;
    associationReceiveBound: number;
    associationSendBound: number;
  } {
    for (const s of this.sessions.values()) this.notePeaks(s);
    return {
      ...this.peaks,
      reorderBound: this.config.sessionWindow,
      sendBound: this.config.sendBufferLimit,
      associationReceiveBound: this.config.associationBuffer,
      associationSendBound: this.config.associationSendBuffer,
    };
  }

  /** Paths in the order they were added, with their lifecycle state. */
  pathSummary(): PathSummary[] {
    const now = this.clock.now();
    const paths = [...this.paths.values()];
    const coupling = this.coupling;
    return paths.map((p) => ({
      id: p.id,
      kind: p.kind,
      state: p.state,
      local: p.subflow.localAddress,
      remote: `${p.subflow.remoteAddress}:${p.subflow.remotePort}`,
      srttMs: p.recovery.srtt,
      jitterMs: p.estimator.jitterMs(p.recovery),
      lossRate: p.estimator.lossRate(now),
      role: p.role,
      reinjectedBytes: p.reinjectedBytes,
      packetSize: p.maxPacketSize,
      cwnd: p.recovery.cwnd,
      ssthresh: p.recovery.ssthresh,
      slowStartExits: p.recovery.hystart.exits,
      resumed: { jumps: p.recovery.resume.jumps, retreats: p.recovery.resume.retreats },
      controller: p.recovery.controller,
      switchedBackToCubic: p.recovery.autoSwitchedBack,
      linked: p.recovery.linked,
      sharedBottleneckWith:
        coupling === undefined || p.recovery.coupling !== coupling
          ? []
          : paths
              .filter(
                (q) =>
                  q !== p &&
                  q.recovery.coupling === coupling &&
                  coupling.sharesBottleneck(p.recovery, q.recovery),
              )
              .map((q) => q.id),
      deliveryRate: p.recovery.deliveryRate,
      streamBytesSent: p.stats.streamBytesSent,
      streamBytesAcked: p.stats.streamBytesAcked,
      streamBytesReceived: p.stats.streamBytesReceived,
      lost: p.recovery.packetsLost,
      sent: p.stats.packetsSent,
    }));
  }
}

export interface PathSummary {
  id: number;
  kind: TransportKind;
  state: PathLifecycle;
  local: string;
  remote: string;
  srttMs: number;
  /** RFC 3550 interarrival jitter of RTT samples (ms). */
  jitterMs: number;
  /** Packets lost over the recent window (0..1). */
  lossRate: number;
  role: UplinkRole;
  /** Stream bytes moved off this path when it failed or turned suspect. */
  reinjectedBytes: number;
  /** Largest packet the path sends (UDP payload, or TCP record). */
  packetSize: number;
  cwnd: number;
  /** Infinity while the path is still in its first slow start. */
  ssthresh: number;
  /** Slow starts HyStart++ ended on a rising RTT, before a loss did (RFC 9406). */
  slowStartExits: number;
  /** Careful Resume (RFC 9959): window jumps from an earlier path's figures, and retreats. */
  resumed: { jumps: number; retreats: number };
  /** The congestion controller in use ('auto' shows what it chose). */
  controller: 'cubic' | 'newreno' | 'bbr';
  /** Times 'auto' moved it back from BBR to CUBIC, its queue shown to be shared. */
  switchedBackToCubic: number;
  /** Its increase and loss response are linked with other paths' (LIA) now. */
  linked: boolean;
  /**
   * Paths of this association found to share a bottleneck with it
   * (core/paths/shared-bottleneck.ts); all coupled paths when detection is off.
   */
  sharedBottleneckWith: number[];
  deliveryRate: number;
  streamBytesSent: number;
  streamBytesAcked: number;
  streamBytesReceived: number;
  lost: number;
  sent: number;
}

/**
 * End (in the scratch buffer) of the payload of `path`'s next packet: its size less the
 * header that packet will carry and the AEAD tag. The header is the one of the packet
 * number it will get (a 4-byte number after 16383 packets, not the 8 a varint may
 * take), which leaves 4 more bytes of data in each packet: 0.3 % of the goodput. No
 * packet goes on the path between this and sealAndSend, which checks it.
 */
function payloadBudgetEnd(path: Path): number {
  const hl = headerLength(path.id, path.recovery.upcomingPacketNumber);
  return HEADER_ROOM + path.maxPacketSize - hl - TAG_LENGTH;
}

function errorCodeOr(
  wireCode: number,
): ReturnType<typeof codeName> extends infer C ? Exclude<C, 'UNKNOWN'> : never {
  const name = codeName(wireCode);
  return name === 'UNKNOWN' ? 'BRAID_ERR_ASSOCIATION_CLOSED' : name;
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

function isUsable(p: Path): boolean {
  return p.usable;
}

function hasRoom(paths: readonly Path[]): boolean {
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i]!;
    if (p.usable && p.recovery.sendAllowance() > 0) return true;
  }
  return false;
}

/**
 * Uplink roles before the scheduler: primaries first; secondaries only when no
 * primary has congestion-window room (demand exceeds the primaries), not merely when
 * a primary's pacer asks to wait; backups only when no primary or secondary path is
 * up (roleTiers leaves them out otherwise).
 */
function pickByRole(tiers: RoleTiers<Path>, now: number): Path | undefined {
  const p = pickPath(tiers.primary, now);
  if (p !== undefined || hasRoom(tiers.primary)) return p;
  const s = pickPath(tiers.secondary, now);
  if (s !== undefined || hasRoom(tiers.secondary)) return s;
  return pickPath(tiers.backup, now);
}

function viewOf(p: Path): PathView {
  return p.view;
}
