import { EventEmitter } from 'node:events';
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
import type { EngineEvent } from './engine-events.js';
import type { DataCapLedger } from '../paths/data-caps.js';
import type { PathMetricsCache } from '../paths/path-metrics-cache.js';
import type { Scoreboard, ScoreboardKey } from '../paths/scoreboard.js';
import type { ObjectivePolicy } from '../sched/combiner.js';
import { stricterRole, type UplinkRole } from '../paths/uplink-roles.js';
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
   * Host-wide scoreboard of measured paths (paper §III-B): a new path starts from its
   * last figures, and each path's figures are recorded as it runs and when it ends.
   */
  scoreboard?: Scoreboard;
  /**
   * Congestion state that ended paths left for new ones between the same addresses
   * (RFC 9040 temporal sharing; path-metrics-cache.ts): pass one cache for every
   * association of a host, so that a reconnect does not overflow its uplinks anew.
   */
  pathMetrics?: PathMetricsCache;
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
/** How long a TCP path stays suspect before it is replaced by a fresh connection. */
const REPLACE_AFTER_MS = 1000;

export interface ClientEvents {
  event: [EngineEvent];
}

export class BraidClient extends EventEmitter<ClientEvents> {
  readonly association: Association;
  /** Local addresses in use (one per uplink), with the transport each prefers. */
  private readonly uplinks = new Map<string, TransportKind>();
  private scoreboard: Scoreboard | undefined;
  /** Paths that were active once (a later 'active' is a recovery). */
  private readonly joinedOnce = new Set<number>();
  /** TCP paths being replaced, by old path id. */
  private readonly replacing = new Set<number>();
  /** Roles the user chose, by local address (default primary). */
  private readonly roles = new Map<string, UplinkRole>();
  private caps: { ledger: DataCapLedger; nameOf: (local: string) => string } | undefined;
  private capTimer: NodeJS.Timeout | undefined;
  /** Bytes per path already counted against a cap. */
  private readonly counted = new Map<number, number>();
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
    super();
    this.association = association;
    this.invite = invite;
    this.remote = remote;
    this.log = log;
    this.wrap = wrap;
    association.on('path', (path, state) => this.onPathState(path, state));
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
      ...(options.pathMetrics === undefined ? {} : { pathMetrics: options.pathMetrics }),
    });
    // The handshake connection is not a data path; its loss must not end the association.
    est.control.on('error', (err: Error) => log.info('control connection error', errorFields(err)));
    est.control.on('close', () => log.info('control connection closed'));
    const client = new BraidClient(association, invite, est.remote, log, options.wrapSubflow);
    if (options.scoreboard !== undefined) client.useScoreboard(options.scoreboard);
    client.controlSocket = est.control;
    association.once('closed', () => est.control.destroy());
    const plans: PathPlan[] = [];
    options.via.forEach((localAddress, i) => {
      client.uplinks.set(localAddress, transports[i]!);
      plans.push(...client.plansFor(localAddress, transports[i]!));
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

  private plansFor(localAddress: string, transport: TransportKind): PathPlan[] {
    return this.remote.addresses
      .filter((remoteAddress) => sameFamily(localAddress, remoteAddress))
      .map((remoteAddress) => ({ localAddress, remoteAddress, transport }));
  }

  /** Local addresses of the uplinks in use. */
  get uplinkAddresses(): string[] {
    return [...this.uplinks.keys()];
  }

  /**
   * A new uplink (or a returning one, with the same or a new address): its paths join
   * the running association. Resolves with the paths that joined; rejects only when
   * none did. Adding an address already in use does nothing.
   */
  async addUplink(localAddress: string, transport: TransportKind = 'udp'): Promise<Path[]> {
    if (this.uplinks.has(localAddress)) return [];
    this.uplinks.set(localAddress, transport);
    this.event({ type: 'uplink-up', at: Date.now(), local: localAddress });
    const plans = this.plansFor(localAddress, transport);
    if (plans.length === 0) {
      throw new BraidError('BRAID_ERR_NO_PATH', 'no peer address of this address family', {
        value: localAddress,
        peer: this.association.peer,
      });
    }
    const outcomes = await Promise.allSettled(plans.map((plan) => this.addPath(plan)));
    const joined: Path[] = [];
    for (const o of outcomes) {
      if (o.status === 'rejected') {
        this.log.warn('path could not join', { local: localAddress, ...errorFields(o.reason) });
        continue;
      }
      // The uplink vanished while this path was joining.
      if (!this.uplinks.has(localAddress)) this.association.dropPath(o.value, 'uplink removed');
      else joined.push(o.value);
    }
    if (joined.length === 0 && this.uplinks.has(localAddress)) {
      throw new BraidError('BRAID_ERR_NO_PATH', 'no path from this uplink could join', {
        value: localAddress,
        peer: this.association.peer,
        cause: outcomes.find((o) => o.status === 'rejected')?.reason,
      });
    }
    return joined;
  }

  /**
   * An uplink vanished (interface gone, address lost, link black-holed by the user's
   * choice): its paths are dropped at once and their data re-sent on the others,
   * without waiting for a timeout.
   */
  removeUplink(localAddress: string, reason: string): void {
    if (!this.uplinks.delete(localAddress)) return;
    this.event({ type: 'uplink-down', at: Date.now(), local: localAddress, reason });
    for (const path of [...this.association.livePaths]) {
      if (path.subflow.localAddress !== localAddress) continue;
      const reinjected = this.association.dropPath(path, reason);
      this.event({
        type: 'failover',
        at: Date.now(),
        local: localAddress,
        pathId: path.id,
        reinjectedBytes: reinjected,
        reason,
      });
    }
  }

  /** Seeds new paths from the scoreboard and records every path's figures into it. */
  useScoreboard(scoreboard: Scoreboard, intervalMs = 5000): void {
    this.scoreboard = scoreboard;
    const timer = setInterval(() => this.recordScores(), intervalMs);
    timer.unref();
    this.association.once('closed', () => {
      clearInterval(timer);
      this.recordScores();
    });
  }

  private scoreKey(path: Path): ScoreboardKey {
    return {
      localUplink: path.subflow.localAddress,
      remoteAddress: path.subflow.remoteAddress,
      transport: path.kind,
    };
  }

  private recordScores(): void {
    const sb = this.scoreboard;
    if (sb === undefined) return;
    const now = performance.now();
    for (const path of this.association.paths.values()) {
      if (path.state === 'joining') continue;
      const score = path.estimator.score(now, path.recovery);
      if (score !== undefined) sb.record(this.scoreKey(path), score);
    }
    sb.save().catch((err: unknown) =>
      this.log.warn('could not save the scoreboard', errorFields(err)),
    );
  }

  /** Sets an uplink's role; it applies at once to its paths and to those it opens later. */
  setUplinkRole(localAddress: string, role: UplinkRole): void {
    this.roles.set(localAddress, role);
    this.applyRoles();
  }

  /** The role in force for an uplink: the user's, demoted to backup while its cap is reached. */
  effectiveRole(localAddress: string): UplinkRole {
    const chosen = this.roles.get(localAddress) ?? 'primary';
    const caps = this.caps;
    if (caps !== undefined && caps.ledger.isCapped(caps.nameOf(localAddress))) {
      return stricterRole(chosen, 'backup');
    }
    return chosen;
  }

  private applyRoles(): void {
    for (const path of this.association.livePaths) {
      const role = this.effectiveRole(path.subflow.localAddress);
      if (role === path.role) continue;
      path.role = role;
      this.association.announceRole(path);
    }
    this.association.scheduleFlush();
  }

  /**
   * Counts every path's bytes (both directions, packet sizes on the wire) against its
   * uplink's monthly cap, once a second; a cap reached demotes the uplink to backup.
   * `nameOf` maps a local address to the uplink's name in the ledger.
   */
  useDataCaps(ledger: DataCapLedger, nameOf: (local: string) => string, intervalMs = 1000): void {
    this.caps = { ledger, nameOf };
    const localOf = (uplink: string): string =>
      this.uplinkAddresses.find((a) => nameOf(a) === uplink) ?? uplink;
    ledger.on('warning', (uplink, e) =>
      this.event({
        type: 'cap-warning',
        at: Date.now(),
        local: localOf(uplink),
        usedBytes: e.usedBytes,
        capBytes: e.capBytes,
      }),
    );
    ledger.on('reached', (uplink, e) => {
      this.event({
        type: 'cap-reached',
        at: Date.now(),
        local: localOf(uplink),
        usedBytes: e.usedBytes,
        capBytes: e.capBytes,
      });
      this.applyRoles();
    });
    this.capTimer = setInterval(() => this.countUsage(), intervalMs);
    this.capTimer.unref();
    this.association.once('closed', () => {
      this.countUsage();
      clearInterval(this.capTimer);
    });
  }

  /** Adds each path's new bytes to its uplink's account and saves the ledger. */
  countUsage(): void {
    const caps = this.caps;
    if (caps === undefined) return;
    for (const path of this.association.paths.values()) {
      const total = path.stats.bytesSent + path.stats.bytesReceived;
      const delta = total - (this.counted.get(path.id) ?? 0);
      if (delta <= 0) continue;
      this.counted.set(path.id, total);
      caps.ledger.record(caps.nameOf(path.subflow.localAddress), delta);
    }
    try {
      caps.ledger.save();
    } catch (err) {
      this.log.warn('could not save data cap accounting', errorFields(err));
    }
  }

  private onPathState(path: Path, state: string): void {
    const local = path.subflow.localAddress;
    const at = Date.now();
    switch (state) {
      case 'active':
        path.role = this.effectiveRole(local);
        if (path.role !== 'primary') this.association.announceRole(path);
        if (this.joinedOnce.has(path.id)) {
          this.event({ type: 'path-recovered', at, local, pathId: path.id });
        } else {
          this.joinedOnce.add(path.id);
          this.event({
            type: 'path-joined',
            at,
            local,
            pathId: path.id,
            remote: `${path.subflow.remoteAddress}:${path.subflow.remotePort}`,
            transport: path.kind,
          });
        }
        return;
      case 'suspect':
        this.event({ type: 'path-suspect', at, local, pathId: path.id });
        this.event({
          type: 'failover',
          at,
          local,
          pathId: path.id,
          reinjectedBytes: path.reinjectedBytes,
          reason: 'no acknowledgement progress',
        });
        // Paper §III-B: a TCP path that stalls is replaced, since its kernel buffer may
        // hold it behind a loss it will never get past in time. Its data already moved
        // to the other paths; the replacement waits a moment, because a path that was
        // only slow (a busy machine) answers again and is kept.
        if (path.kind === 'tcp') {
          const wait = Math.max(REPLACE_AFTER_MS, 4 * path.recovery.srtt);
          setTimeout(() => {
            if (path.state === 'suspect') this.replaceTcpPath(path);
          }, wait).unref();
        }
        return;
      case 'failed':
      case 'closed': {
        const score = path.estimator.score(performance.now(), path.recovery);
        if (score !== undefined) this.scoreboard?.record(this.scoreKey(path), score);
        this.event({ type: 'path-failed', at, local, pathId: path.id, reason: state });
        return;
      }
    }
  }

  private replaceTcpPath(old: Path): void {
    const local = old.subflow.localAddress;
    if (this.replacing.has(old.id) || !this.uplinks.has(local)) return;
    this.replacing.add(old.id);
    this.joinPath(local, old.subflow.remoteAddress, 'tcp')
      .then((fresh) => {
        this.replacing.delete(old.id);
        if (old.alive) this.association.dropPath(old, 'replaced by a fresh TCP connection');
        this.event({
          type: 'path-replaced',
          at: Date.now(),
          local,
          oldPathId: old.id,
          newPathId: fresh.id,
        });
      })
      .catch((err: unknown) => {
        this.replacing.delete(old.id);
        this.log.warn('stalled TCP path could not be replaced', {
          path: old.id,
          local,
          ...errorFields(err),
        });
      });
  }

  private event(e: EngineEvent): void {
    if (this.log.enabled('info')) this.log.info('engine event', { ...e });
    this.emit('event', e);
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
    // A short session starts from what this uplink measured last time (paper §III-B).
    const seed = this.scoreboard?.seed(this.scoreKey(path));
    if (seed !== undefined) path.estimator.seed(seed);
    return this.association.waitJoined(path);
  }

  openStream(
    options: {
      target?: string;
      semantics?: Semantics;
      priorities?: Objective[];
      policy?: Omit<ObjectivePolicy, 'priorities'>;
    } = {},
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
    policy?: Omit<ObjectivePolicy, 'priorities'>;
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
