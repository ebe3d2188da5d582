import { EventEmitter } from 'node:events';
import { networkInterfaces as osNetworkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { BraidError, isBraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import { systemClock, type Clock } from '../util/clock.js';
import { classifyInterface, readSysfsFacts, type SysfsFacts } from './classify.js';
import { diffUplinks } from './diff.js';
import { findExecutable, probeGateway, runCommand } from './gateway-probe.js';
import { createIgnoreRule, type IgnoreRule } from './ignore.js';
import { IpMonitor } from './ip-monitor.js';
import { gatewayByDevice, parseDefaultRoutes, parseIpAddr, type IpLink } from './ip-json.js';
import { fromNetworkInterfaces } from './os-interfaces.js';
import { freezeUplink, sameUplink, uplinkKey, type Uplink } from './uplink.js';

export interface InterfaceWatcherOptions {
  /** Interface names or globs (`*`, `?`) to mark ignored, on top of the defaults. */
  ignore?: readonly string[];
  /** Ignore loopback, container bridges and bridge/bond ports (default true). */
  ignoreDefaults?: boolean;
  /** Polling fallback period (default 2000 ms). */
  pollIntervalMs?: number;
  clock?: Clock;
  logger?: Logger;
  /**
   * 'netlink': `ip monitor` wake-ups, Linux only; 'poll': `os.networkInterfaces()`;
   * 'auto' (default): netlink where `ip -json` works, else poll.
   */
  source?: 'auto' | 'netlink' | 'poll';
  /** Delay between the first netlink event and the re-read it causes (default 50 ms). */
  debounceMs?: number;
  /** Netlink mode: re-read this often even without events (default 30 s). */
  reconcileIntervalMs?: number;
  /** Gateway probe period per uplink (default 5000 ms); 0 turns probing off. */
  gatewayProbeIntervalMs?: number;
  /** Where the polling fallback reads interfaces (default `os.networkInterfaces`). */
  networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

export interface InterfaceWatcherEvents {
  added: [uplink: Uplink];
  removed: [uplink: Uplink];
  changed: [uplink: Uplink, previous: Uplink];
}

type Source = 'netlink' | 'poll';

interface ProbeState {
  gateway: string;
  reachable: boolean | undefined;
}

/** Retry period after a failed re-read when no event comes to trigger one. */
const READ_RETRY_MS = 1000;
/**
 * `spawn` resolves before `ip monitor` has joined its netlink groups; a change in that
 * gap would be seen by neither the monitor nor the initial read, so read once more.
 */
const STARTUP_REREAD_MS = 250;

/**
 * Reports network interfaces as they appear ('added'), disappear ('removed') and
 * change address, state, gateway or gateway reachability ('changed'), DESIGN §5.
 *
 * On Linux, every `ip monitor` wake-up schedules one re-read of the whole state
 * (`ip -details -json addr show` and `ip -json route show table all`) after a short
 * debounce; events that arrive during a re-read schedule one more. The new state is
 * diffed against the last one, so a burst of any length ends in the final state and
 * intermediate states may be skipped. Elsewhere, or without a working `ip`,
 * `os.networkInterfaces()` is polled; that source knows no gateway, no index and no
 * down interfaces (libuv lists only running interfaces with an address).
 *
 * start() emits 'added' for every interface present, then resolves.
 */
export class InterfaceWatcher extends EventEmitter<InterfaceWatcherEvents> {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly ignoreRule: IgnoreRule;
  private readonly pollIntervalMs: number;
  private readonly debounceMs: number;
  private readonly reconcileIntervalMs: number;
  private readonly gatewayProbeIntervalMs: number;
  private readonly requestedSource: 'auto' | 'netlink' | 'poll';
  private readonly readNetworkInterfaces: () => NodeJS.Dict<NetworkInterfaceInfo[]>;

  private running = false;
  private activeSource: Source | undefined;
  private ipPath: string | null = null;
  private pingPath: string | null = null;
  private monitor: IpMonitor | undefined;
  private current = new Map<string, Uplink>();
  private readonly sysfsCache = new Map<string, SysfsFacts>();
  private readonly probes = new Map<string, ProbeState>();
  private readonly probing = new Set<string>();
  private probeAbort = new AbortController();
  private readTimer: NodeJS.Timeout | undefined;
  private periodicTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private startupTimer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private dirty = false;
  /** Clock time of the first event not yet covered by a re-read. */
  private pendingSince: number | undefined;

  constructor(options: InterfaceWatcherOptions = {}) {
    super();
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? createLogger({ fields: { component: 'iface' } });
    this.ignoreRule = createIgnoreRule(options.ignore, options.ignoreDefaults ?? true);
    this.pollIntervalMs = positive('pollIntervalMs', options.pollIntervalMs ?? 2000);
    this.debounceMs = nonNegative('debounceMs', options.debounceMs ?? 50);
    this.reconcileIntervalMs = positive(
      'reconcileIntervalMs',
      options.reconcileIntervalMs ?? 30_000,
    );
    this.gatewayProbeIntervalMs = nonNegative(
      'gatewayProbeIntervalMs',
      options.gatewayProbeIntervalMs ?? 5000,
    );
    this.requestedSource = options.source ?? 'auto';
    this.readNetworkInterfaces = options.networkInterfaces ?? osNetworkInterfaces;
  }

  /** Where the state comes from, once started. */
  get source(): Source | undefined {
    return this.activeSource;
  }

  /** Times `ip monitor` died and was restarted. */
  get monitorRestarts(): number {
    return this.monitor?.restarts ?? 0;
  }

  /** The last known state of every interface, ignored ones included, by index. */
  snapshot(): Uplink[] {
    return [...this.current.values()].sort(
      (a, b) => a.index - b.index || (a.name < b.name ? -1 : 1),
    );
  }

  async start(): Promise<void> {
    if (this.running) throw new BraidError('BRAID_ERR_USAGE', 'interface watcher already started');
    this.running = true;
    // A restarted watcher reports every interface as added again, as start() promises.
    this.current = new Map();
    this.sysfsCache.clear();
    this.probes.clear();
    this.probeAbort = new AbortController();
    try {
      [this.ipPath, this.pingPath] = await Promise.all([
        findExecutable('ip'),
        findExecutable('ping'),
      ]);
      await this.startSource();
    } catch (err) {
      await this.stop();
      throw err;
    }
    if (this.gatewayProbeIntervalMs > 0 && this.activeSource === 'netlink') {
      this.probeTimer = setInterval(() => this.probeAll(true), this.gatewayProbeIntervalMs);
    }
  }

  private async startSource(): Promise<void> {
    const wanted = this.requestedSource;
    const netlinkPossible = process.platform === 'linux' && this.ipPath !== null;
    if (wanted === 'netlink' && !netlinkPossible) {
      throw new BraidError('BRAID_ERR_CONFIG', 'netlink source needs Linux and iproute2 `ip`', {
        value: `${process.platform}, ip ${this.ipPath ?? 'missing'}`,
      });
    }
    if (wanted !== 'poll' && netlinkPossible) {
      try {
        await this.startNetlink();
        return;
      } catch (err) {
        if (wanted === 'netlink') throw err;
        this.logger.warn('netlink source unavailable; polling os.networkInterfaces()', {
          ...errorFields(err),
          pollIntervalMs: this.pollIntervalMs,
        });
        await this.monitor?.stop();
        this.monitor = undefined;
      }
    } else if (wanted === 'auto') {
      this.logger.info('polling os.networkInterfaces()', {
        platform: process.platform,
        ip: this.ipPath ?? 'missing',
        pollIntervalMs: this.pollIntervalMs,
      });
    }
    this.activeSource = 'poll';
    await this.initialRead();
    this.periodicTimer = setInterval(() => this.requestRead(), this.pollIntervalMs);
  }

  private async startNetlink(): Promise<void> {
    this.activeSource = 'netlink';
    this.monitor = new IpMonitor({
      ip: this.ipPath!,
      logger: this.logger,
      clock: this.clock,
      onEvent: () => this.requestRead(),
      onRestart: () => this.requestRead(),
    });
    await this.monitor.start();
    await this.initialRead();
    this.startupTimer = setTimeout(() => {
      this.startupTimer = undefined;
      this.requestRead();
    }, STARTUP_REREAD_MS);
    this.periodicTimer = setInterval(() => this.requestRead(), this.reconcileIntervalMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const timer of [this.readTimer, this.startupTimer]) clearTimeout(timer);
    for (const timer of [this.periodicTimer, this.probeTimer]) clearInterval(timer);
    this.readTimer = this.startupTimer = this.periodicTimer = this.probeTimer = undefined;
    this.probeAbort.abort();
    await this.monitor?.stop();
    this.monitor = undefined;
    await this.reading;
  }

  /** Coalesces wake-ups: at most one re-read pending and one running. */
  private requestRead(): void {
    if (!this.running) return;
    this.pendingSince ??= this.clock.now();
    if (this.reading !== undefined) {
      this.dirty = true;
      return;
    }
    if (this.readTimer !== undefined) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = undefined;
      const since = this.pendingSince;
      this.pendingSince = undefined;
      this.dirty = false;
      this.reading = this.readAndApply(since).then(
        () => this.afterRead(),
        (err: unknown) => {
          this.logger.error('interface state re-read failed; retrying', {
            ...errorFields(err),
            retryInMs: READ_RETRY_MS,
          });
          this.afterRead();
          if (this.running && this.readTimer === undefined) {
            this.readTimer = setTimeout(() => {
              this.readTimer = undefined;
              this.requestRead();
            }, READ_RETRY_MS);
          }
        },
      );
    }, this.debounceMs);
  }

  /** The first read, under the same one-at-a-time guard as the others. */
  private async initialRead(): Promise<void> {
    this.reading = this.readAndApply(undefined);
    try {
      await this.reading;
    } finally {
      this.reading = undefined;
    }
    if (this.dirty) {
      this.dirty = false;
      this.requestRead();
    }
  }

  private afterRead(): void {
    this.reading = undefined;
    if (this.dirty) {
      this.dirty = false;
      this.requestRead();
    }
  }

  private async readAndApply(triggeredAt: number | undefined): Promise<void> {
    const next =
      this.activeSource === 'netlink' ? await this.readNetlink() : await this.readPolled();
    if (!this.running) return;
    this.apply(next, triggeredAt);
  }

  private async readNetlink(): Promise<Uplink[]> {
    const ip = this.ipPath!;
    const [addr, route] = await Promise.all([
      runIpJson(ip, ['-details', '-json', 'addr', 'show']),
      runIpJson(ip, ['-json', 'route', 'show', 'table', 'all']),
    ]);
    const links = parseIpAddr(addr);
    const gateways = gatewayByDevice(parseDefaultRoutes(route));
    const keys = new Set(links.map(uplinkKey));
    for (const key of this.sysfsCache.keys()) if (!keys.has(key)) this.sysfsCache.delete(key);
    return Promise.all(links.map((link) => this.buildNetlinkUplink(link, gateways)));
  }

  private async buildNetlinkUplink(link: IpLink, gateways: Map<string, string>): Promise<Uplink> {
    const key = uplinkKey(link);
    let sysfs = this.sysfsCache.get(key);
    if (sysfs === undefined) {
      sysfs = await readSysfsFacts(link.name);
      if (sysfs.ifindex !== undefined && sysfs.ifindex !== link.index) {
        // /sys belongs to another network namespace (or the name moved meanwhile).
        this.logger.debug('sysfs describes another interface; kind from ip alone', {
          name: link.name,
          index: link.index,
          sysfsIndex: sysfs.ifindex,
        });
        sysfs = {};
      }
      // Deleted meanwhile: nothing to cache, the next read drops the interface.
      if (sysfs.ifindex !== undefined) this.sysfsCache.set(key, sysfs);
    }
    const kind = classifyInterface({
      name: link.name,
      loopback: link.flags.includes('LOOPBACK'),
      ...(link.linkType === undefined ? {} : { linkType: link.linkType }),
      ...(link.linkKind === undefined ? {} : { linkKind: link.linkKind }),
      ...sysfs,
    });
    const ignored = this.ignoreRule({
      name: link.name,
      kind,
      ...(link.linkKind === undefined ? {} : { linkKind: link.linkKind }),
      ...(link.master === undefined ? {} : { master: link.master }),
    });
    return this.finish({
      name: link.name,
      index: link.index,
      kind,
      addresses: link.addresses,
      up: link.flags.includes('UP') && link.flags.includes('LOWER_UP'),
      ignored,
      ...(gateways.has(link.name) ? { gateway: gateways.get(link.name)! } : {}),
    });
  }

  private async readPolled(): Promise<Uplink[]> {
    const polled = fromNetworkInterfaces(this.readNetworkInterfaces());
    return Promise.all(
      polled.map(async (p) => {
        const sysfs = process.platform === 'linux' ? await readSysfsFacts(p.name) : {};
        const kind = classifyInterface({ name: p.name, loopback: p.internal, ...sysfs });
        return this.finish({
          name: p.name,
          index: sysfs.ifindex ?? 0,
          kind,
          addresses: p.addresses,
          up: true,
          ignored: this.ignoreRule({ name: p.name, kind }),
        });
      }),
    );
  }

  /** Adds what the gateway probes know; only a probe of the same gateway counts. */
  private finish(u: Omit<Uplink, 'gatewayReachable'>): Uplink {
    let reachable: boolean | undefined;
    if (u.gateway !== undefined && !u.ignored) {
      const probe = this.probes.get(uplinkKey(u));
      // A down interface reaches nothing; that is known, not guessed.
      if (!u.up) reachable = false;
      else if (probe?.gateway === u.gateway) reachable = probe.reachable;
    }
    return freezeUplink({
      ...u,
      ...(reachable === undefined ? {} : { gatewayReachable: reachable }),
    });
  }

  private apply(next: readonly Uplink[], triggeredAt: number | undefined): void {
    const changes = diffUplinks([...this.current.values()], next);
    this.current = new Map(next.map((u) => [uplinkKey(u), u]));
    for (const key of this.probes.keys()) {
      const u = this.current.get(key);
      // A probe result is stale once the interface went away, went down or changed gateway.
      if (u === undefined || !u.up || u.gateway !== this.probes.get(key)!.gateway) {
        this.probes.delete(key);
      }
    }
    if (changes.length > 0 && triggeredAt !== undefined && this.logger.enabled('debug')) {
      this.logger.debug('interface change applied', {
        changes: changes.length,
        reactionMs: Math.round(this.clock.now() - triggeredAt),
      });
    }
    for (const change of changes) {
      if (change.type === 'changed') this.emitSafely('changed', change.uplink, change.previous);
      else this.emitSafely(change.type, change.uplink);
    }
    this.probeAll(false);
  }

  private emitSafely<E extends keyof InterfaceWatcherEvents>(
    event: E,
    ...args: InterfaceWatcherEvents[E]
  ): void {
    try {
      (this.emit as (e: E, ...a: InterfaceWatcherEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      // A throwing listener must not stop the other events of this diff.
      this.logger.error('interface watcher listener threw', {
        ...errorFields(err),
        event,
        name: args[0].name,
      });
    }
  }

  /** Probes every eligible uplink: all of them (periodic) or those never probed. */
  private probeAll(periodic: boolean): void {
    if (!this.running || this.gatewayProbeIntervalMs === 0 || this.activeSource !== 'netlink') {
      return;
    }
    for (const [key, u] of this.current) {
      if (u.ignored || !u.up || u.gateway === undefined || this.probing.has(key)) continue;
      if (!periodic && this.probes.get(key)?.gateway === u.gateway) continue;
      this.probe(key, u.name, u.gateway);
    }
  }

  private probe(key: string, device: string, gateway: string): void {
    this.probing.add(key);
    const signal = this.probeAbort.signal;
    void probeGateway(device, gateway, { ping: this.pingPath, ip: this.ipPath, signal })
      .then(
        (result) => {
          if (!this.running) return;
          const u = this.current.get(key);
          if (u === undefined || !u.up || u.gateway !== gateway) return;
          const before = this.probes.get(key);
          this.probes.set(key, { gateway, reachable: result.reachable });
          // The first answer for a gateway is logged too: it says whether probing works.
          if (before === undefined || before.reachable !== result.reachable) {
            this.logger.info('gateway reachability', {
              name: device,
              gateway,
              reachable: result.reachable ?? 'unknown',
              method: result.method,
              detail: result.detail,
            });
          }
          const updated = this.finish(u);
          if (!sameUplink(updated, u)) {
            this.current.set(key, updated);
            this.emitSafely('changed', updated, u);
          }
        },
        (err: unknown) => {
          // Aborted by stop(): the watcher no longer reports anything.
          if (signal.aborted && isBraidError(err, 'BRAID_ERR_INTERNAL')) return;
          this.logger.error('gateway probe failed', { ...errorFields(err), name: device, gateway });
        },
      )
      .finally(() => this.probing.delete(key));
  }
}

async function runIpJson(ip: string, args: string[]): Promise<string> {
  const r = await runCommand(ip, args);
  if (r.exitCode !== 0) {
    throw new BraidError('BRAID_ERR_INTERNAL', `${ip} ${args.join(' ')} failed`, {
      value: `exit ${String(r.exitCode)}: ${r.stderr.trim()}`,
    });
  }
  return r.stdout;
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new BraidError('BRAID_ERR_CONFIG', `interface watcher: ${name} must be > 0`, { value });
  }
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new BraidError('BRAID_ERR_CONFIG', `interface watcher: ${name} must be >= 0`, {
      value,
    });
  }
  return value;
}
