import type { TLSSocket } from 'node:tls';
import { connectControl } from '../handshake/control.js';
import { parseInvite, type Invite } from '../handshake/invite.js';
import { openTcpSubflow } from '../transport/tcp-subflow.js';
import { openUdpSubflow } from '../transport/udp-subflow.js';
import type { Subflow } from '../transport/subflow.js';
import type { Objective, Semantics, TransportKind } from '../wire/frame.js';
import { Association } from '../session/association.js';
import { verifyConfig, type Config } from '../session/config.js';
import type { Path } from '../session/path.js';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import { BraidStream } from './braid-stream.js';
import { BraidMessageSocket } from './message-socket.js';
import type { MessageSemantics } from '../session/session.js';

export interface ClientOptions {
  invite: Invite | string;
  /** Local addresses to send from, one uplink each (the client's m addresses). */
  via: string[];
  /** Transport per `via` entry; a single entry applies to all. Default udp. */
  transports?: TransportKind[];
  config?: Partial<Config>;
  logger?: Logger;
  /**
   * Wraps each path's subflow before use. For tests and the lab only: an emulated
   * link (loss, reordering, tampering) is the input under test, never a stand-in.
   */
  wrapSubflow?: (subflow: Subflow, path: PathPlan) => Subflow;
}

export interface PathPlan {
  localAddress: string;
  remoteAddress: string;
  transport: TransportKind;
}

export type ConnectResult =
  { kind: 'braid'; client: BraidClient } | { kind: 'legacy'; reason: string; invite: Invite };

/**
 * The connecting side of an association: TLS handshake on the control port, then
 * one path per (local address × remote address), each joined with an authenticated
 * JOIN. A UDP path that cannot join (UDP blocked on that uplink) falls back to TCP
 * from the same local address (paper §III-B, automatic transport selection).
 */
export class BraidClient {
  readonly association: Association;
  readonly invite: Invite;
  private readonly log: Logger;
  private readonly remote: { addresses: string[]; udpPort: number; tcpPort: number };
  private readonly wrap: ((subflow: Subflow, path: PathPlan) => Subflow) | undefined;
  /** The TLS connection that carried the handshake; the association does not depend on it. */
  controlSocket!: TLSSocket;

  private constructor(
    association: Association,
    invite: Invite,
    remote: { addresses: string[]; udpPort: number; tcpPort: number },
    log: Logger,
    wrap: ((subflow: Subflow, path: PathPlan) => Subflow) | undefined,
  ) {
    this.association = association;
    this.invite = invite;
    this.remote = remote;
    this.log = log;
    this.wrap = wrap;
  }

  /** Connects and joins every path; resolves once all joins settled and at least one path is up. */
  static async connect(options: ClientOptions): Promise<ConnectResult> {
    const invite =
      typeof options.invite === 'string' ? parseInvite(options.invite) : options.invite;
    const config = verifyConfig(options.config);
    const log = (options.logger ?? createLogger()).child({
      component: 'client',
      peer: `${invite.host}:${invite.port}`,
    });
    if (options.via.length === 0) {
      throw new BraidError('BRAID_ERR_USAGE', 'at least one local address is needed', {
        value: options.via,
      });
    }
    const transports = options.via.map(
      (_, i) => options.transports?.[i] ?? options.transports?.[0] ?? 'udp',
    );
    const result = await connectControl({
      host: invite.host,
      port: invite.port,
      fingerprint: invite.fingerprint,
      keyId: invite.keyId,
      key: invite.key,
      localAddress: options.via[0],
      addresses: options.via,
      transports: [...new Set<TransportKind>([...transports, 'tcp'])],
      helloTimeoutMs: config.helloTimeoutMs,
      logger: log,
    });
    if (result.kind === 'legacy') {
      log.warn('peer did not answer HELLO: legacy single-path fallback', { reason: result.reason });
      return { kind: 'legacy', reason: result.reason, invite };
    }
    const est = result.association;
    const association = new Association({
      role: 'client',
      secrets: est.secrets,
      config,
      logger: log,
      peer: `${invite.host}:${invite.port}`,
    });
    // The handshake connection is not a data path; its loss must not end the association.
    est.control.on('error', (err: Error) => log.info('control connection error', errorFields(err)));
    est.control.on('close', () => log.info('control connection closed'));
    const client = new BraidClient(association, invite, est.remote, log, options.wrapSubflow);
    client.controlSocket = est.control;
    association.once('closed', () => est.control.destroy());
    const plans: PathPlan[] = [];
    options.via.forEach((localAddress, i) => {
      for (const remoteAddress of est.remote.addresses) {
        if (sameFamily(localAddress, remoteAddress))
          plans.push({ localAddress, remoteAddress, transport: transports[i]! });
      }
    });
    const outcomes = await Promise.allSettled(plans.map((plan) => client.addPath(plan)));
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    for (const failure of failures) log.warn('path could not join', errorFields(failure.reason));
    if (failures.length === outcomes.length) {
      association.close(
        new BraidError('BRAID_ERR_NO_PATH', 'no path could join', { peer: association.peer }),
      );
      throw new BraidError('BRAID_ERR_NO_PATH', 'no path could join', {
        peer: association.peer,
        cause: failures[0]?.reason,
      });
    }
    return { kind: 'braid', client };
  }

  /** Opens one path; a UDP path that does not join falls back to TCP on the same local address. */
  async addPath(plan: PathPlan): Promise<Path> {
    if (plan.transport === 'udp') {
      try {
        return await this.joinPath(plan.localAddress, plan.remoteAddress, 'udp');
      } catch (err) {
        this.log.warn('UDP path did not join; falling back to TCP', {
          local: plan.localAddress,
          ...errorFields(err),
        });
      }
    }
    return this.joinPath(plan.localAddress, plan.remoteAddress, 'tcp');
  }

  private async joinPath(
    localAddress: string,
    remoteAddress: string,
    transport: TransportKind,
  ): Promise<Path> {
    const opened =
      transport === 'udp'
        ? await openUdpSubflow({ localAddress, remoteAddress, remotePort: this.remote.udpPort })
        : await openTcpSubflow({ localAddress, remoteAddress, remotePort: this.remote.tcpPort });
    const subflow =
      this.wrap === undefined
        ? opened
        : this.wrap(opened, { localAddress, remoteAddress, transport });
    const path = this.association.addPath(this.association.allocatePathId(), subflow, 'joining');
    return this.association.waitJoined(path);
  }

  openStream(
    options: { target?: string; semantics?: Semantics; priorities?: Objective[] } = {},
  ): BraidStream {
    return new BraidStream(
      this.association.openSession({ ...options, semantics: 'reliable-ordered' }),
    );
  }

  /** Opens a message session: unreliable-unordered, reliable-unordered or unreliable-ordered. */
  openMessages(options: {
    semantics: MessageSemantics;
    target?: string;
    priorities?: Objective[];
    /** Playout deadline of unreliable-ordered sessions (ms); default 150. */
    deadlineMs?: number;
  }): BraidMessageSocket {
    return new BraidMessageSocket(this.association.openSession(options));
  }

  close(): void {
    this.association.close();
  }
}

function sameFamily(a: string, b: string): boolean {
  return a.includes(':') === b.includes(':');
}
