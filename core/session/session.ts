import type { Objective, OpenPolicy, PolicyFrame, Semantics } from '../wire/frame.js';
import { BraidError } from '../util/errors.js';
import { SessionScheduler, type FeedbackReport, type ObjectivePolicy } from '../sched/combiner.js';
import { NeverWorseGuard } from '../sched/never-worse-guard.js';
import { OBJECTIVES, SLIDER_SCALE } from '../wire/frame.js';
import { MessageReceiver } from './message-receiver.js';
import { MessageSendQueue } from './message-send-queue.js';
import { ReceiveStream } from './receive-stream.js';
import { SendStream } from './send-stream.js';

/** Semantics carried by DATAGRAM frames (message sessions). */
export type MessageSemantics = Exclude<Semantics, 'reliable-ordered'>;

/**
 * What a sender may send before the peer's first MAX_DATA: the smallest session
 * window a peer may configure (config.ts checks `sessionWindow` against it).
 */
export const INITIAL_PEER_WINDOW = 256 * 1024;

/** The two halves of a message session. */
export interface MessageParts {
  send: MessageSendQueue;
  recv: MessageReceiver;
}

/**
 * Life of a session. Only `transition()` assigns the state.
 * - awaiting-open: the peer's STREAM or DATAGRAM frames arrived before its OPEN
 *   (they took a faster path); data is buffered, the application is not told yet.
 * - open: both directions carry data.
 * - local-finished / remote-finished: one direction ended (a byte stream's FIN
 *   acknowledged or delivered to the application; for a message session, our CLOSE
 *   acknowledged or the peer's CLOSE received).
 * - closed: both directions ended; the session is forgotten.
 * - reset: aborted by either side with a code.
 */
export type SessionState =
  'awaiting-open' | 'open' | 'local-finished' | 'remote-finished' | 'closed' | 'reset';

export interface SessionEvents {
  /** In-order bytes are ready to read(). */
  onReadable(): void;
  /** The send buffer dropped below its limit. */
  onWritable(): void;
  /** Every byte written and the end of stream are acknowledged by the peer. */
  onSendDone(): void;
  /** `byApplication`: the local application closed the association itself. */
  onReset(error: BraidError, byApplication: boolean): void;
  onClosed(): void;
  /** Message sessions: a message is delivered. */
  onMessage?(data: Uint8Array): void;
  /** Message sessions: the peer closed its sending half; no further message comes. */
  onPeerEnd?(): void;
}

/** What a session needs from its association. */
export interface SessionHost {
  /** The session has something to send. */
  wake(session: Session): void;
  /** Send a session-control frame reliably. */
  sendMaxData(session: Session): void;
  sendReset(session: Session, code: number, reason: string): void;
  /** Tells the peer what the application experiences (FEEDBACK frame). */
  sendFeedback(session: Session, report: FeedbackReport): void;
  /** Tells the peer the session's rule changed (POLICY frame, session.policyFrame()). */
  sendPolicy(session: Session): void;
  sessionEnded(session: Session): void;
  /** Receive credit (bytes beyond those delivered) this session may be granted now. */
  receiveCredit(session: Session): number;
  /** The bytes this session holds for the application changed by `delta`. */
  receiveBufferChanged(session: Session, delta: number): void;
  /** The unacknowledged bytes this session holds to send changed by `delta`. */
  sendBufferChanged(session: Session, delta: number): void;
  /**
   * Whether the association's send total leaves room for more writes. With a session
   * that finds no room, the association tells it (sendRoomFreed) once acknowledgements
   * made room; with null it only answers.
   */
  sendRoom(session: Session | null): boolean;
}

export interface SessionOptions {
  id: number;
  semantics: Semantics;
  priorities: Objective[];
  target: string;
  /** Playout deadline of an unreliable-ordered session (ms). */
  deadlineMs?: number;
  maxMessageSize?: number;
  /** The app's sliders and tolerances; priorities come from `priorities`. */
  policy?: Omit<ObjectivePolicy, 'priorities'>;
  /** Clock reading at creation, for the never-worse guard's windows. */
  now?: number;
  /** Our receive window (bytes), advertised to the peer. */
  window: number;
  /** What the first MAX_DATA grants (default `window`); at least INITIAL_PEER_WINDOW. */
  initialCredit?: number;
  /** Unacknowledged bytes the application may have written before writes wait. */
  sendBufferLimit: number;
  /** Whether this side opened the session (and so must send OPEN). */
  local: boolean;
  /** Peer-opened session whose OPEN has not arrived yet. */
  awaitingOpen?: boolean;
}

export class Session {
  readonly id: number;
  semantics: Semantics;
  priorities: Objective[];
  target: string;
  readonly local: boolean;
  readonly send: SendStream;
  readonly recv: ReceiveStream;
  readonly sendBufferLimit: number;
  /** OPEN still to be (re)sent by this side. */
  openPending: boolean;
  /** A MAX_DATA frame is due. */
  maxDataPending = false;
  /** Credit granted beyond INITIAL_PEER_WINDOW, as the association counts it. */
  creditExtra = 0;
  /** Received bytes held (unread stream data, early messages), as last reported to the host. */
  heldBytes = 0;
  /** Head-of-line watch (association tick): the acknowledged prefix last seen, and since when. */
  holPrefix = -1;
  holSince = 0;
  /** Stream bytes queued again on a stuck prefix (SendStream.reinjectHead). */
  holReinjectedBytes = 0;
  /**
   * The tail of what was written went out and was looked at (association reinjectTail):
   * at the FIN, or once the send buffer stayed empty for a moment. A write or the end
   * starts a new tail.
   */
  tailChecked = false;
  /** When the send buffer emptied without a FIN (association idle tails); -1 when not. */
  drainedAt = -1;
  /** Stream bytes in flight on slower paths sent again on the fastest at the end of the stream. */
  tailReinjectedBytes = 0;
  /** Stream payload bytes this session sent on each path (fresh and retransmitted). */
  readonly bytesByPath = new Map<number, number>();
  /** Message sessions only (semantics other than reliable-ordered). */
  msg: MessageParts | undefined;
  /** Picks the path for this session's packets by its objectives (core/sched/combiner.ts). */
  readonly scheduler: SessionScheduler;
  /**
   * Never worse than one uplink (issue: semantics, item 4): watches the striped
   * session against the best single path and pins it to that path while striping
   * does worse.
   */
  guard: NeverWorseGuard;
  private policy: Omit<ObjectivePolicy, 'priorities'>;
  /** This side's own sliders and tolerances, under what the peer's OPEN and POLICY set. */
  private ownPolicy: Omit<ObjectivePolicy, 'priorities'>;
  /** Rule changes made here since OPEN (POLICY sequence). */
  private policySequence = 0;
  /** The last POLICY sequence applied from the peer. */
  private peerPolicySequence = 0;
  /** A POLICY that overtook its session's OPEN, applied once the OPEN arrives. */
  private earlyPolicy: PolicyFrame | undefined;
  private readonly guardCreatedAt: number;

  /** The objective the never-worse guard judges this session by. */
  get guardObjective(): Objective {
    return guardObjective(this.priorities);
  }
  deadlineMs: number;
  /** Largest message: each travels whole in one packet of the smallest path. */
  maxMessageSize: number;
  /** Message session: the application closed its sending half. */
  closing = false;
  /** Message session: our CLOSE is queued (it goes once every message is acknowledged). */
  closeSent = false;
  private early:
    | Array<{
        number: number;
        data: Uint8Array;
        at: number;
        sentAtMicros: number | undefined;
        oneWayDelayMs: number;
      }>
    | undefined;
  private earlyBytes = 0;
  /** Bound of the early DATAGRAM buffer: the same receive window a byte stream has. */
  private readonly window: number;
  events: SessionEvents | undefined;
  private state_: SessionState;
  private resetError: BraidError | undefined;

  constructor(
    options: SessionOptions,
    private readonly host: SessionHost,
  ) {
    this.id = options.id;
    this.semantics = options.semantics;
    this.priorities = options.priorities;
    this.target = options.target;
    this.local = options.local;
    this.sendBufferLimit = options.sendBufferLimit;
    // The peer's window is not known yet: send no more than the smallest window any
    // peer may have, and tell the peer ours at once with MAX_DATA (the first packet of
    // the session carries it), so that two ends configured differently cannot stall.
    this.send = new SendStream(INITIAL_PEER_WINDOW);
    this.recv = new ReceiveStream(options.window, options.initialCredit);
    this.maxDataPending = options.semantics === 'reliable-ordered' || options.awaitingOpen === true;
    this.openPending = options.local;
    this.deadlineMs = options.deadlineMs ?? 0;
    this.window = options.window;
    this.policy = options.policy ?? {};
    this.ownPolicy = this.policy;
    this.scheduler = new SessionScheduler({
      ...this.policy,
      priorities: distinct(this.priorities),
    });
    this.guardCreatedAt = options.now ?? 0;
    this.guard = new NeverWorseGuard(
      { objective: guardObjective(this.priorities) },
      this.guardCreatedAt,
    );
    this.maxMessageSize = options.maxMessageSize ?? 1200;
    this.state_ = options.awaitingOpen === true ? 'awaiting-open' : 'open';
    if (options.awaitingOpen !== true && options.semantics !== 'reliable-ordered') {
      this.msg = makeMessageParts(options.semantics, this.deadlineMs, this.guardCreatedAt);
    }
  }

  get isMessage(): boolean {
    return this.msg !== undefined;
  }

  get state(): SessionState {
    return this.state_;
  }

  get error(): BraidError | undefined {
    return this.resetError;
  }

  get isDone(): boolean {
    return this.state_ === 'closed' || this.state_ === 'reset';
  }

  private transition(to: SessionState): void {
    const from = this.state_;
    if (from === to) return;
    switch (to) {
      case 'open':
        if (from !== 'awaiting-open') throw this.illegal(from, to);
        break;
      case 'local-finished':
        if (from !== 'open') throw this.illegal(from, to);
        break;
      case 'remote-finished':
        if (from !== 'open' && from !== 'awaiting-open') throw this.illegal(from, to);
        break;
      case 'closed':
        if (from !== 'local-finished' && from !== 'remote-finished') throw this.illegal(from, to);
        break;
      case 'reset':
        if (from === 'closed') throw this.illegal(from, to);
        break;
      case 'awaiting-open':
        throw this.illegal(from, to);
    }
    this.state_ = to;
  }

  private illegal(from: SessionState, to: SessionState): BraidError {
    return new BraidError('BRAID_ERR_INTERNAL', `session cannot go from ${from} to ${to}`, {
      value: this.id,
    });
  }

  /**
   * The peer's OPEN arrived (possibly after some of its data). Returns an error when
   * the session's early data does not fit the semantics the OPEN names.
   */
  opened(
    semantics: Semantics,
    priorities: Objective[],
    target: string,
    deadlineMs = 0,
    peerPolicy?: OpenPolicy,
  ): BraidError | undefined {
    this.semantics = semantics;
    this.target = target;
    this.deadlineMs = deadlineMs;
    // The opener's sliders and tolerances rule this side's sending too (issue 4 item 3);
    // what the OPEN leaves out keeps this side's value.
    this.adopt(priorities, this.policy, peerPolicy);
    this.guard = new NeverWorseGuard(
      { objective: guardObjective(priorities) },
      this.guardCreatedAt,
    );
    if (semantics !== 'reliable-ordered') {
      if (semantics === 'unreliable-ordered' && !(deadlineMs > 0)) {
        return new BraidError(
          'BRAID_ERR_SESSION_STATE',
          'unreliable-ordered OPEN without deadline',
          {
            value: this.id,
          },
        );
      }
      if (this.recv.hasReceived) {
        return new BraidError('BRAID_ERR_SESSION_STATE', 'STREAM data on a message session', {
          value: this.id,
        });
      }
      this.msg ??= makeMessageParts(semantics, deadlineMs, this.guardCreatedAt);
    } else if (this.early !== undefined) {
      return new BraidError('BRAID_ERR_SESSION_STATE', 'DATAGRAM on a reliable-ordered session', {
        value: this.id,
      });
    }
    if (this.state_ === 'awaiting-open') this.transition('open');
    const early = this.earlyPolicy;
    this.earlyPolicy = undefined;
    if (early !== undefined) this.onPeerPolicy(early);
    return undefined;
  }

  /**
   * The peer's app changed its rule for this session (POLICY): this side's scheduler
   * takes the new priorities, sliders and tolerances from its next packet. Older
   * sequences than the last applied are ignored; one that overtook the OPEN waits for it.
   */
  onPeerPolicy(frame: PolicyFrame): void {
    if (this.state_ === 'awaiting-open') {
      if (this.earlyPolicy === undefined || frame.sequence > this.earlyPolicy.sequence)
        this.earlyPolicy = frame;
      return;
    }
    if (frame.sequence <= this.peerPolicySequence || this.isDone) return;
    this.peerPolicySequence = frame.sequence;
    this.adopt(frame.priorities, this.ownPolicy, frame.policy);
  }

  /**
   * Runs by `priorities` and `own` sliders and tolerances under what `peer` (OPEN or
   * POLICY) sets. The scheduler checks the values first: a bad one throws and changes
   * nothing.
   */
  private adopt(
    priorities: Objective[],
    own: Omit<ObjectivePolicy, 'priorities'>,
    peer: OpenPolicy | undefined,
  ): void {
    const policy = peer === undefined ? own : { ...own, ...policyFromWire(peer) };
    this.scheduler.setPolicy({ ...policy, priorities: distinct(priorities) });
    this.priorities = priorities;
    this.policy = policy;
    this.ownPolicy = own;
  }

  /** Replays DATAGRAM frames that arrived before OPEN; call after the application was told. */
  replayEarly(): void {
    const early = this.early;
    this.early = undefined;
    this.earlyBytes = 0;
    this.syncHeld();
    if (early === undefined) return;
    for (const e of early) {
      this.onDatagram(e.number, e.data, e.at, e.sentAtMicros, e.oneWayDelayMs);
    }
  }

  /**
   * Changes the app's rule for this open session: priorities, sliders, tolerances.
   * Applies from the next packet on. Throws BRAID_ERR_CONFIG for a bad value.
   */
  setPolicy(priorities: Objective[], policy: Omit<ObjectivePolicy, 'priorities'> = {}): void {
    this.adopt(priorities, policy, undefined);
    this.policySequence++;
    // An OPEN not sent yet (or lost: it is rebuilt) carries the new rule itself.
    if (!this.openPending && !this.isDone) this.host.sendPolicy(this);
  }

  /**
   * The POLICY frame for this session's current rule, or undefined when `sequence` is
   * no longer the newest (a lost POLICY is resent only while nothing replaced it).
   */
  policyFrame(sequence = this.policySequence): PolicyFrame | undefined {
    if (sequence !== this.policySequence || this.policySequence === 0 || this.isDone)
      return undefined;
    return {
      type: 'policy',
      sessionId: this.id,
      sequence,
      priorities: this.priorities,
      policy: policyToWire(this.policy) ?? {},
    };
  }

  /** The sliders and tolerances this session runs with (the opener's, on the far side). */
  get objectivePolicy(): Readonly<Omit<ObjectivePolicy, 'priorities'>> {
    return this.policy;
  }

  /** The sliders and tolerances for this session's OPEN; undefined when all are defaults. */
  get openPolicy(): OpenPolicy | undefined {
    return policyToWire(this.policy);
  }

  /** Application feedback (paper §III-C): nudges this session's scheduler for a while. */
  feedback(report: FeedbackReport, now: number): void {
    this.scheduler.feedback(report, now);
    // What the app reports about the data it receives concerns the peer's sending
    // direction too: tell the peer's scheduler (paper §III-C).
    if (!this.isDone) this.host.sendFeedback(this, report);
  }

  /** The next bytes out are a repair of a byte stream (lost or reinjected data). */
  get repairPending(): boolean {
    return this.msg === undefined && this.send.repairPending;
  }

  /**
   * Bytes waiting to be sent (the ECF scheduler's backlog): unbounded while the send
   * buffer is full, for then the application holds more than the buffer and waits on
   * us. Else ECF took a buffer smaller than the paths' bandwidth-delay product (4 MB at
   * loopback's 2 Gbit/s and 20 ms) for the tail of a transfer all the way through, and
   * gave the fastest path every packet DRR meant for the others.
   */
  get backlogBytes(): number {
    return this.writableNow ? this.sendBuffered : Infinity;
  }

  // ------------------------------------------------------------- message sessions

  /** Queues one message; false when the send buffer is over its limit (wait for onWritable). */
  sendMessage(data: Buffer, now: number): boolean {
    const msg = this.msg;
    if (msg === undefined) {
      throw new BraidError('BRAID_ERR_USAGE', 'sendMessage on a byte-stream session', {
        value: this.id,
      });
    }
    if (this.isDone || this.closing) {
      throw new BraidError(
        'BRAID_ERR_SESSION_STATE',
        `send on a ${this.closing ? 'closing' : this.state_} session`,
        {
          value: this.id,
        },
      );
    }
    if (data.length > this.maxMessageSize) {
      throw new BraidError(
        'BRAID_ERR_USAGE',
        `message of ${data.length} bytes exceeds the ${this.maxMessageSize}-byte limit`,
        { value: data.length },
      );
    }
    msg.send.push(data, now);
    this.syncSendHeld();
    this.host.wake(this);
    return this.writable;
  }

  /** DATAGRAM frame from the peer. */
  /**
   * A DATAGRAM frame arrived. `sentAtMicros`: its send stamp (unreliable-ordered);
   * `oneWayDelayMs`: the smallest one-way delay of the path it came on (half that
   * path's min RTT), with which the receiver maps the stamp to our clock.
   */
  onDatagram(
    number: number,
    data: Uint8Array,
    now: number,
    sentAtMicros?: number,
    oneWayDelayMs = 0,
  ): BraidError | undefined {
    if (this.isDone) return undefined;
    if (this.state_ === 'awaiting-open') {
      // Acknowledged at the packet level already, so never dropped: a reliable sender
      // would not repeat them. A peer that sends more than a window before its OPEN
      // arrives is in error.
      this.earlyBytes += data.length + 64;
      if (this.earlyBytes > this.window) {
        return new BraidError('BRAID_ERR_FLOW_CONTROL', 'messages before OPEN exceed the window', {
          value: this.earlyBytes,
        });
      }
      (this.early ??= []).push({ number, data, at: now, sentAtMicros, oneWayDelayMs });
      this.syncHeld();
      return undefined;
    }
    const msg = this.msg;
    if (msg === undefined) {
      return new BraidError('BRAID_ERR_SESSION_STATE', 'DATAGRAM on a reliable-ordered session', {
        value: this.id,
      });
    }
    if (this.state_ === 'remote-finished') return undefined;
    msg.recv.receive(number, data, now, this.deliverMessage, sentAtMicros, oneWayDelayMs);
    return undefined;
  }

  private readonly deliverMessage = (data: Uint8Array): void => {
    this.events?.onMessage?.(data);
  };

  /** The playout deadline of held messages passed (unreliable-ordered). */
  onMessageTimer(now: number): void {
    this.msg?.recv.onTimer(now, this.deliverMessage);
  }

  /** The peer's CLOSE: it sends nothing more. */
  onPeerClose(): void {
    if (this.isDone || this.msg === undefined) return;
    if (this.state_ === 'remote-finished') return;
    // Whatever is still held behind a gap goes out now: no repair can come after CLOSE.
    this.msg.recv.onTimer(Infinity, this.deliverMessage);
    if (this.state_ === 'local-finished') {
      this.events?.onPeerEnd?.();
      this.close();
      return;
    }
    this.transition('remote-finished');
    this.events?.onPeerEnd?.();
  }

  /** Our CLOSE was acknowledged: every message we sent is settled. */
  closeAcked(): void {
    if (this.isDone) return;
    this.events?.onSendDone();
    if (this.state_ === 'open') this.transition('local-finished');
    else if (this.state_ === 'remote-finished') this.close();
  }

  /** Message session: our CLOSE may go now (closing, and nothing left to settle). */
  get closeDue(): boolean {
    return this.closing && !this.closeSent && this.msg !== undefined && this.msg.send.drained;
  }

  write(chunk: Buffer): void {
    if (this.isDone) {
      throw new BraidError('BRAID_ERR_SESSION_STATE', `write on a ${this.state_} session`, {
        value: this.id,
      });
    }
    this.send.write(chunk);
    this.startTail();
    this.syncSendHeld();
    this.host.wake(this);
  }

  /** More was written, or the end: a new tail, not yet looked at nor waiting to be. */
  private startTail(): void {
    this.tailChecked = false;
    this.drainedAt = -1;
  }

  end(): void {
    if (this.isDone) return;
    if (this.msg !== undefined) {
      this.closing = true;
    } else {
      this.send.end();
      this.startTail();
    }
    this.host.wake(this);
  }

  /**
   * Whether the application may write more: under this session's send buffer limit and
   * the association's send total. When only the total is over, the session is told
   * (onWritable) once there is room.
   */
  get writable(): boolean {
    return this.sendBuffered < this.sendBufferLimit && this.host.sendRoom(this);
  }

  /** `writable` without asking to be told: for the association's before-and-after checks. */
  get writableNow(): boolean {
    return this.sendBuffered < this.sendBufferLimit && this.host.sendRoom(null);
  }

  /** Bytes queued or unacknowledged on the send side. */
  private get sendBuffered(): number {
    return this.msg !== undefined ? this.msg.send.bufferedBytes : this.send.bufferedBytes;
  }

  /**
   * sendBuffered as last reported to the host (Association.sendBufferChanged); the
   * association takes it back when the session ends.
   */
  sendHeld = 0;

  /** Reports a change of sendBuffered to the host's association-wide total. */
  private syncSendHeld(): void {
    if (this.isDone) return;
    const now = this.sendBuffered;
    if (now === this.sendHeld) return;
    const delta = now - this.sendHeld;
    this.sendHeld = now;
    this.host.sendBufferChanged(this, delta);
  }

  /**
   * The send buffer may have shrunk (acknowledgements, or an unreliable message that
   * left when sent and was then lost): reports it to the association's total, and tells
   * the application when that made room.
   */
  sendSettled(wasWritable: boolean): void {
    if (this.isDone) return;
    this.syncSendHeld();
    if (!wasWritable && this.writable) this.events?.onWritable();
  }

  /** The association's send total fell under its bound after this session had to wait. */
  sendRoomFreed(): void {
    if (!this.isDone && this.writable) this.events?.onWritable();
  }

  /** Called by the association after acknowledgements were applied to `send`. */
  afterAck(wasWritable: boolean): void {
    if (this.isDone) return;
    this.sendSettled(wasWritable);
    if (this.msg !== undefined) {
      if (this.closeDue) this.host.wake(this);
      return;
    }
    if (this.send.allAcked) {
      this.events?.onSendDone();
      if (this.state_ === 'open') this.transition('local-finished');
      else if (this.state_ === 'remote-finished') this.close();
    }
  }

  /** STREAM frame from the peer. */
  onStream(offset: number, data: Uint8Array, fin: boolean): BraidError | undefined {
    if (this.isDone) return undefined;
    if (this.msg !== undefined || this.early !== undefined) {
      return new BraidError('BRAID_ERR_SESSION_STATE', 'STREAM data on a message session', {
        value: this.id,
      });
    }
    const err = this.recv.receive(offset, data, fin);
    if (err !== undefined) return err;
    this.syncHeld();
    // The association may have reset this session to stay within its buffer.
    if (this.isDone) return undefined;
    if (this.state_ !== 'awaiting-open') this.events?.onReadable();
    return undefined;
  }

  /**
   * The application consumed data: move the window, and finish the receive half
   * once the end of stream was handed over.
   */
  consumed(): void {
    this.syncHeld();
    if (this.isDone) return;
    if (this.recv.windowUpdate(this.host.receiveCredit(this)) !== undefined)
      this.host.sendMaxData(this);
    if (this.recv.finished && !this.isDone) {
      if (this.state_ === 'open') this.transition('remote-finished');
      else if (this.state_ === 'local-finished') this.close();
    }
  }

  onMaxData(maxOffset: number): void {
    if (maxOffset > this.send.peerMaxOffset) {
      this.send.peerMaxOffset = maxOffset;
      this.host.wake(this);
    }
  }

  /** Reports a change of the received bytes held to the association (its buffer cap). */
  private syncHeld(): void {
    if (this.isDone) return;
    const held = this.recv.bufferedBytes + this.earlyBytes;
    if (held === this.heldBytes) return;
    const delta = held - this.heldBytes;
    this.heldBytes = held;
    this.host.receiveBufferChanged(this, delta);
  }

  /** Aborts the session locally and tells the peer. */
  abort(error: BraidError): void {
    if (this.isDone) return;
    this.host.sendReset(this, error.wireCode, error.message);
    this.fail(error);
  }

  /** RESET from the peer, or the association failed. */
  fail(error: BraidError, byApplication = false): void {
    if (this.isDone) return;
    this.resetError = error;
    this.transition('reset');
    this.host.sessionEnded(this);
    this.events?.onReset(error, byApplication);
  }

  private close(): void {
    this.transition('closed');
    this.host.sessionEnded(this);
    this.events?.onClosed();
  }
}

/** `epoch`: the session's creation time, which unreliable-ordered send stamps count from. */
function makeMessageParts(
  semantics: MessageSemantics,
  deadlineMs: number,
  epoch: number,
): MessageParts {
  return {
    send: new MessageSendQueue(semantics, deadlineMs, epoch),
    recv: new MessageReceiver(semantics, deadlineMs),
  };
}

/** An app policy in OPEN's wire units (frame.ts OpenPolicy); undefined when nothing is set. */
export function policyToWire(policy: Omit<ObjectivePolicy, 'priorities'>): OpenPolicy | undefined {
  const out: OpenPolicy = {};
  const micros = (ms: number): number => Math.max(1, Math.round(ms * 1000));
  const ppm = (x: number): number => Math.max(1, Math.round(x * 1_000_000));
  if (policy.lossVsThroughput !== undefined) {
    out.lossVsThroughputPpm = Math.round(policy.lossVsThroughput * SLIDER_SCALE);
  }
  if (policy.latencyVsThroughput !== undefined) {
    out.latencyVsThroughputPpm = Math.round(policy.latencyVsThroughput * SLIDER_SCALE);
  }
  const eps = policy.epsilon;
  if (eps?.latencyMs !== undefined) out.epsilonLatencyMicros = micros(eps.latencyMs);
  if (eps?.jitterMs !== undefined) out.epsilonJitterMicros = micros(eps.jitterMs);
  if (eps?.loss !== undefined) out.epsilonLossPpm = ppm(eps.loss);
  return Object.keys(out).length === 0 ? undefined : out;
}

/** A peer's OPEN policy as an app policy (only the fields it carries). */
export function policyFromWire(wire: OpenPolicy): Omit<ObjectivePolicy, 'priorities'> {
  const out: Omit<ObjectivePolicy, 'priorities'> = {};
  if (wire.lossVsThroughputPpm !== undefined) {
    out.lossVsThroughput = wire.lossVsThroughputPpm / SLIDER_SCALE;
  }
  if (wire.latencyVsThroughputPpm !== undefined) {
    out.latencyVsThroughput = wire.latencyVsThroughputPpm / SLIDER_SCALE;
  }
  const epsilon: NonNullable<ObjectivePolicy['epsilon']> = {};
  if (wire.epsilonLatencyMicros !== undefined) epsilon.latencyMs = wire.epsilonLatencyMicros / 1000;
  if (wire.epsilonJitterMicros !== undefined) epsilon.jitterMs = wire.epsilonJitterMicros / 1000;
  if (wire.epsilonLossPpm !== undefined) epsilon.loss = wire.epsilonLossPpm / 1_000_000;
  if (Object.keys(epsilon).length > 0) out.epsilon = epsilon;
  return out;
}

/** The objectives in order, each once (a peer's OPEN may repeat one). */
function distinct(priorities: readonly Objective[]): Objective[] {
  const out: Objective[] = [];
  for (const o of priorities) if (OBJECTIVES.includes(o) && !out.includes(o)) out.push(o);
  return out;
}

/**
 * What the guard compares on: the app's first-ranked objective (throughput when it
 * ranks none).
 */
function guardObjective(priorities: readonly Objective[]): Objective {
  return priorities[0] ?? 'throughput';
}
