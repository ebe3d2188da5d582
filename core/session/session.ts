import type { Objective, Semantics } from '../wire/frame.js';
import { BraidError } from '../util/errors.js';
import { ReceiveStream } from './receive-stream.js';
import { SendStream } from './send-stream.js';

/**
 * Life of a reliable-ordered session. Only `transition()` assigns the state.
 * - awaiting-open: the peer's STREAM frames arrived before its OPEN (they took a
 *   faster path); data is buffered, the application is not told yet.
 * - open: both directions carry data.
 * - local-finished / remote-finished: one direction ended (FIN acknowledged, or
 *   the peer's FIN delivered to the application).
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
}

/** What a session needs from its association. */
export interface SessionHost {
  /** The session has something to send. */
  wake(session: Session): void;
  /** Send a session-control frame reliably. */
  sendMaxData(session: Session): void;
  sendReset(session: Session, code: number, reason: string): void;
  sessionEnded(session: Session): void;
}

export interface SessionOptions {
  id: number;
  semantics: Semantics;
  priorities: Objective[];
  target: string;
  /** Our receive window (bytes), advertised to the peer. */
  window: number;
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
  /** Stream payload bytes this session sent on each path (fresh and retransmitted). */
  readonly bytesByPath = new Map<number, number>();
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
    // Both sides start from the same default window; MAX_DATA moves it.
    this.send = new SendStream(options.window);
    this.recv = new ReceiveStream(options.window);
    this.openPending = options.local;
    this.state_ = options.awaitingOpen === true ? 'awaiting-open' : 'open';
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

  /** The peer's OPEN arrived (possibly after some of its data). */
  opened(semantics: Semantics, priorities: Objective[], target: string): void {
    this.semantics = semantics;
    this.priorities = priorities;
    this.target = target;
    if (this.state_ === 'awaiting-open') this.transition('open');
  }

  write(chunk: Buffer): void {
    if (this.isDone) {
      throw new BraidError('BRAID_ERR_SESSION_STATE', `write on a ${this.state_} session`, {
        value: this.id,
      });
    }
    this.send.write(chunk);
    this.host.wake(this);
  }

  end(): void {
    if (this.isDone) return;
    this.send.end();
    this.host.wake(this);
  }

  get writable(): boolean {
    return this.send.bufferedBytes < this.sendBufferLimit;
  }

  /** Called by the association after acknowledgements were applied to `send`. */
  afterAck(wasWritable: boolean): void {
    if (this.isDone) return;
    if (!wasWritable && this.writable) this.events?.onWritable();
    if (this.send.allAcked) {
      this.events?.onSendDone();
      if (this.state_ === 'open') this.transition('local-finished');
      else if (this.state_ === 'remote-finished') this.close();
    }
  }

  /** STREAM frame from the peer. */
  onStream(offset: number, data: Uint8Array, fin: boolean): BraidError | undefined {
    if (this.isDone) return undefined;
    const err = this.recv.receive(offset, data, fin);
    if (err !== undefined) return err;
    if (this.state_ !== 'awaiting-open') this.events?.onReadable();
    return undefined;
  }

  /**
   * The application consumed data: move the window, and finish the receive half
   * once the end of stream was handed over.
   */
  consumed(): void {
    if (this.recv.windowUpdate() !== undefined) this.host.sendMaxData(this);
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
