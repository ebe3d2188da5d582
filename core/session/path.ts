import type { Frame, TransportKind } from '../wire/frame.js';
import type { Subflow } from '../transport/subflow.js';
import type { PathKey } from '../transport/packet-protection.js';
import { PacketProtection } from '../transport/packet-protection.js';
import { ReplayWindow } from '../transport/replay-window.js';
import { PathRecovery } from '../paths/path-recovery.js';
import { PathEstimator } from '../paths/estimators.js';
import { createPathView, type PathView } from '../sched/path-view.js';
import type { Clock } from '../util/clock.js';
import { BraidError } from '../util/errors.js';
import type { Session } from './session.js';
import type { UplinkRole } from '../paths/uplink-roles.js';

/**
 * Life of one path (one transport flow from a local address to a remote address).
 * Only `transition()` assigns the state.
 * - joining: JOIN sent, no JOIN_ACK yet (client side).
 * - active: carries data.
 * - suspect: no ACK progress for a while; its data was reinjected elsewhere and it
 *   gets no new data until it shows progress again (paper §III-B).
 * - failed: the transport died; everything outstanding was reinjected.
 * - closed: closed on purpose.
 */
export type PathLifecycle = 'joining' | 'active' | 'suspect' | 'failed' | 'closed';

/** A piece of a session's byte stream carried by a sent packet. */
export interface SentChunk {
  session: Session;
  offset: number;
  length: number;
  fin: boolean;
}

/** A reliable message carried by a sent packet. */
export interface SentMessage {
  session: Session;
  number: number;
}

/** What a sent packet carried, so that a loss can be repaired on any path. */
export interface SentRecord {
  chunks: SentChunk[] | null;
  /** Messages: reliable ones are re-sent if the packet is lost; unreliable ones are settled. */
  messages: SentMessage[] | null;
  /** Session-control frames (OPEN, MAX_DATA, RESET) to send again if lost. */
  control: Frame[] | null;
}

export interface PathStats {
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Stream payload bytes sent on this path, first copies and retransmissions. */
  streamBytesSent: number;
  /** Stream payload bytes sent on this path that the peer acknowledged. */
  streamBytesAcked: number;
  /** Stream payload bytes received on this path. */
  streamBytesReceived: number;
  /** DATAGRAM frames sent and received on this path. */
  messagesSent: number;
  messagesReceived: number;
  decryptFailures: number;
  replaysDropped: number;
}

export interface PathOptions {
  id: number;
  kind: TransportKind;
  subflow: Subflow;
  keys: { send: PathKey; receive: PathKey };
  maxPacketSize: number;
  congestion: 'cubic' | 'newreno' | 'bbr' | 'auto';
  clock: Clock;
}

export class Path {
  /** The uplink's role (primary, secondary, backup, never), applied by the scheduler. */
  role: UplinkRole = 'primary';
  /** Last PATH_STATUS sequence sent (client) or applied (server) for this path. */
  statusSequence = 1;
  /** Stream bytes moved off this path to others when it failed or turned suspect. */
  reinjectedBytes = 0;
  readonly id: number;
  readonly kind: TransportKind;
  readonly subflow: Subflow;
  readonly protection: PacketProtection;
  readonly replay = new ReplayWindow();
  readonly recovery: PathRecovery<SentRecord>;
  readonly maxPacketSize: number;
  readonly stats: PathStats = {
    packetsSent: 0,
    packetsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    streamBytesSent: 0,
    streamBytesAcked: 0,
    streamBytesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    decryptFailures: 0,
    replaysDropped: 0,
  };
  /** Path-specific frames waiting for the next packet on this path (JOIN_ACK, PROBE, PROBE_ACK). */
  readonly pending: Frame[] = [];
  /** An ACK-eliciting packet arrived since our last ACK for this path. */
  ackPending = false;
  /** The recovery asked for an ACK right away. */
  ackNow = false;
  /** PTO probes the recovery asked for (RFC 9002 §6.2.4). */
  probesDue = 0;
  /**
   * Loss objective: messages sent on another path whose copy belongs on this one but
   * found its window shut; sent as soon as it opens (association.ts sendCopyDebt).
   */
  copyDebt: SentMessage[] = [];
  /** The subflow refused a packet; wait for its drain. */
  blocked = false;
  /** Deficit-round-robin credit in bytes (core/sched/rate-split.ts). */
  schedCredit = 0;
  /** Whether the scheduler found the path able to send in its last pass. */
  schedEligible = false;
  /** Everything measured about the path beyond loss recovery (core/paths/estimators.ts). */
  readonly estimator: PathEstimator;
  /** What the objective schedulers see of it, refreshed before each pick. */
  readonly view: PathView;
  lastSentAt: number;
  lastReceivedAt: number;
  /** When the JOIN was first sent (client) — for the join timeout. */
  joinStartedAt = 0;
  joinLastSentAt = 0;
  private state_: PathLifecycle;

  constructor(options: PathOptions, initial: 'joining' | 'active') {
    this.id = options.id;
    this.kind = options.kind;
    this.subflow = options.subflow;
    this.protection = new PacketProtection(options.keys.send, options.keys.receive);
    this.maxPacketSize = Math.min(options.maxPacketSize, options.subflow.maxPacketSize);
    this.recovery = new PathRecovery<SentRecord>(
      {
        kind: options.kind,
        maxDatagramSize: this.maxPacketSize,
        congestion: options.congestion,
      },
      options.clock,
    );
    this.estimator = new PathEstimator({ kind: options.kind });
    this.view = createPathView(options.id, options.kind);
    this.state_ = initial;
    const now = options.clock.now();
    this.lastSentAt = now;
    this.lastReceivedAt = now;
  }

  get state(): PathLifecycle {
    return this.state_;
  }

  /** Whether the path may carry new data. */
  get usable(): boolean {
    return this.state_ === 'active' && !this.blocked && !this.subflow.closed;
  }

  get alive(): boolean {
    return this.state_ !== 'failed' && this.state_ !== 'closed';
  }

  transition(to: PathLifecycle): PathLifecycle {
    const from = this.state_;
    if (from === to) return from;
    const ok =
      (from === 'joining' && (to === 'active' || to === 'failed' || to === 'closed')) ||
      (from === 'active' && (to === 'suspect' || to === 'failed' || to === 'closed')) ||
      (from === 'suspect' && (to === 'active' || to === 'failed' || to === 'closed')) ||
      (from === 'failed' && to === 'closed');
    if (!ok) {
      throw new BraidError('BRAID_ERR_INTERNAL', `path cannot go from ${from} to ${to}`, {
        path: this.id,
      });
    }
    this.state_ = to;
    return from;
  }

  describe(): string {
    return `${this.kind} ${this.subflow.localAddress}:${this.subflow.localPort} -> ${this.subflow.remoteAddress}:${this.subflow.remotePort}`;
  }
}
