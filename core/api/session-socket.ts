import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Invite } from '../handshake/invite.js';
import { SEMANTICS, type Objective, type Semantics, type TransportKind } from '../wire/frame.js';
import type { BraidMessageSocket } from './message-socket.js';
import type { Config } from '../session/config.js';
import type { ObjectivePolicy } from '../sched/combiner.js';
import { BraidError } from '../util/errors.js';
import { createLogger, type Logger } from '../util/log.js';
import { BraidClient } from './client.js';
import { BraidListener, type ListenOptions } from './listener.js';

/**
 * State of a session socket (paper Table I).
 * - idle: created, neither bound nor connected.
 * - connecting: handshake and path joins under way.
 * - striped: a Braid session over one or more paths.
 * - legacy: the peer did not answer HELLO; a plain TCP connection (paper §III-B).
 * - closed.
 */
export type SessionSocketState = 'idle' | 'connecting' | 'striped' | 'legacy' | 'closed';

export interface ConnectOptions {
  via: string[];
  transports?: TransportKind[];
  /** What the far end forwards the session to; '' for the peer itself. */
  target?: string;
  config?: Partial<Config>;
  logger?: Logger;
  /**
   * Fall back to one plain TCP connection when the peer does not complete a TLS 1.3
   * handshake (paper §III-B). Off by default: an invite names a Braid relay, so a
   * failed handshake is far more likely an on-path attacker resetting or answering the
   * ClientHello than a plain TCP host, and the fallback would hand it the
   * application's bytes in clear (SECURITY.md, threat 1). Set it only for a peer that
   * may really be a plain TCP service and whose bytes need no confidentiality.
   * Even then there is no fallback once the pinned certificate was seen (control.ts).
   */
  allowLegacy?: boolean;
}

/**
 * The session API of DESIGN §4 / paper Table I: `sessionSocket(semantics,
 * objectives)` creates the endpoint; `bind` listens; `connect` establishes the
 * session; it falls back to one plain TCP connection when the peer is not Braid only
 * when the caller opts in with `allowLegacy`.
 * Reading, writing and closing go through `stream` (a Node Duplex).
 */
/** What `connect()` gives for a semantics: a byte stream, or a message socket. */
export type Connected<S extends Semantics> = S extends 'reliable-ordered'
  ? Duplex
  : BraidMessageSocket;

export class SessionSocket<S extends Semantics = Semantics> {
  readonly semantics: S;
  readonly objectives: Objective[];
  private state_: SessionSocketState = 'idle';
  private stream_: Duplex | undefined;
  private messages_: BraidMessageSocket | undefined;
  private client: BraidClient | undefined;
  private listener: BraidListener | undefined;
  /** Why the socket is in legacy mode, when it is. */
  legacyReason: string | undefined;

  constructor(semantics: S, objectives: Objective[]) {
    if (!SEMANTICS.includes(semantics)) {
      throw new BraidError('BRAID_ERR_USAGE', 'unknown semantics', { value: semantics });
    }
    this.semantics = semantics;
    this.objectives = objectives;
  }

  get state(): SessionSocketState {
    return this.state_;
  }

  private transition(to: SessionSocketState): void {
    const from = this.state_;
    const ok =
      (from === 'idle' && (to === 'connecting' || to === 'closed')) ||
      (from === 'connecting' && (to === 'striped' || to === 'legacy' || to === 'closed')) ||
      ((from === 'striped' || from === 'legacy') && to === 'closed');
    if (!ok)
      throw new BraidError(
        'BRAID_ERR_SESSION_STATE',
        `session socket cannot go from ${from} to ${to}`,
      );
    this.state_ = to;
  }

  /** The message socket once connected (semantics other than reliable-ordered). */
  get messages(): BraidMessageSocket {
    if (this.messages_ === undefined)
      throw new BraidError('BRAID_ERR_SESSION_STATE', `no message socket in state ${this.state_}`);
    return this.messages_;
  }

  /** The byte stream once connected: a BraidStream, or a net.Socket in legacy mode. */
  get stream(): Duplex {
    if (this.stream_ === undefined)
      throw new BraidError('BRAID_ERR_SESSION_STATE', `no stream in state ${this.state_}`);
    return this.stream_;
  }

  get association(): BraidClient['association'] | undefined {
    return this.client?.association;
  }

  /** `session bind`: accept sessions on `port` on all given addresses. */
  async bind(port: number, options: Omit<ListenOptions, 'port'>): Promise<BraidListener> {
    this.listener = await BraidListener.listen({ ...options, port });
    return this.listener;
  }

  /**
   * `session connect`: to the peer named by an invite. A reliable-ordered session
   * resolves to its byte stream (`stream`); the other semantics resolve to a message
   * socket (`messages`). Only a byte stream can fall back to a legacy peer, and only
   * with `allowLegacy: true`; otherwise a peer that does not complete TLS 1.3 rejects
   * with BRAID_ERR_LEGACY_PEER and no application byte is sent.
   */
  async connect(
    invite: Invite | string,
    options: ConnectOptions & {
      deadlineMs?: number;
      /** Sliders and tolerances (DESIGN §3); carried to the peer in OPEN. */
      policy?: Omit<ObjectivePolicy, 'priorities'>;
    },
  ): Promise<Connected<S>> {
    this.transition('connecting');
    const log = options.logger ?? createLogger();
    try {
      const result = await BraidClient.connect({
        invite,
        via: options.via,
        transports: options.transports,
        config: options.config,
        logger: log,
      });
      if (result.kind === 'legacy') {
        this.legacyReason = result.reason;
        const peer = `${result.invite.host}:${result.invite.port}`;
        if (options.allowLegacy !== true) {
          log.warn('refusing the plain TCP fallback: the TLS 1.3 handshake did not complete', {
            peer,
            reason: result.reason,
          });
          throw new BraidError(
            'BRAID_ERR_LEGACY_PEER',
            `the invite's peer did not complete a TLS 1.3 handshake (${result.reason}); ` +
              'not falling back to plain TCP (an on-path attacker could cause this; ' +
              'pass allowLegacy: true only for a peer that may be a plain TCP service)',
            { peer },
          );
        }
        if (this.semantics !== 'reliable-ordered') {
          throw new BraidError(
            'BRAID_ERR_LEGACY_PEER',
            `the peer is not Braid (${result.reason}); ${this.semantics} needs a Braid peer`,
            { peer },
          );
        }
        const socket = await openPlainTcp(result.invite.host, result.invite.port, options.via[0]);
        log.warn('session is a plain TCP connection in clear (legacy peer, allowLegacy)', {
          peer,
          reason: result.reason,
        });
        this.stream_ = socket;
        this.transition('legacy');
        return socket as Duplex as Connected<S>;
      }
      this.client = result.client;
      if (this.semantics !== 'reliable-ordered') {
        this.messages_ = result.client.openMessages({
          semantics: this.semantics,
          target: options.target ?? '',
          priorities: this.objectives,
          deadlineMs: options.deadlineMs,
          policy: options.policy,
        });
        this.transition('striped');
        return this.messages_ as Connected<S>;
      }
      this.stream_ = result.client.openStream({
        target: options.target ?? '',
        priorities: this.objectives,
        policy: options.policy,
      });
      this.transition('striped');
      return this.stream_ as Connected<S>;
    } catch (err) {
      this.transition('closed');
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.state_ === 'closed') return;
    this.stream_?.end();
    this.messages_?.end();
    this.client?.close();
    await this.listener?.close();
    if (this.state_ !== 'idle' || this.stream_ !== undefined) this.state_ = 'closed';
    else this.transition('closed');
  }
}

export function sessionSocket(): SessionSocket<'reliable-ordered'>;
export function sessionSocket<S extends Semantics>(
  semantics: S,
  objectives?: Objective[],
): SessionSocket<S>;
export function sessionSocket(
  semantics: Semantics = 'reliable-ordered',
  objectives: Objective[] = ['loss', 'throughput'],
): SessionSocket {
  return new SessionSocket(semantics, objectives);
}

function openPlainTcp(
  host: string,
  port: number,
  localAddress: string | undefined,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) =>
      reject(
        new BraidError('BRAID_ERR_TRANSPORT', 'legacy TCP connection failed', {
          peer: `${host}:${port}`,
          cause: err,
        }),
      ),
    );
  });
}
