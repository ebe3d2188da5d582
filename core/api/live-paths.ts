import type { EgressPinner, EgressStatus } from '../iface/egress.js';
import type { InterfaceWatcher, Uplink } from '../iface/index.js';
import type { TransportKind } from '../wire/frame.js';
import { errorFields, type Logger } from '../util/log.js';
import type { BraidClient } from './client.js';

export interface LivePathsOptions {
  /** Transport for new uplinks' paths (a UDP path that cannot join falls back to TCP). */
  transport?: TransportKind;
  /**
   * Whether an uplink may carry paths (its role is not "never", the user enabled it).
   * Called again on every change; default: every uplink that is not ignored.
   */
  allow?: (uplink: Uplink) => boolean;
  /** Address families to use (default IPv4 only: the relay's address family). */
  families?: ReadonlyArray<4 | 6>;
  /**
   * Pins each uplink's egress before its paths join (policy routing where the main
   * table would send them elsewhere); `destination` is the peer address to check with.
   */
  egress?: { pinner: EgressPinner; destination: string };
  logger: Logger;
}

/**
 * Keeps a client's path set equal to the uplinks the interface watcher reports
 * (issue: uplinks, item 3): a new uplink's paths join the running association at
 * once, a vanished uplink's paths are dropped at once with their data reinjected,
 * and a returning uplink rejoins under its old or its new address. Reconciling the
 * whole set on every event means a burst of events ends in the final state.
 */
export class LivePaths {
  private readonly client: BraidClient;
  private readonly watcher: InterfaceWatcher;
  private readonly transport: TransportKind;
  private readonly allow: (uplink: Uplink) => boolean;
  private readonly families: ReadonlyArray<4 | 6>;
  private readonly log: Logger;
  private readonly egress: LivePathsOptions['egress'];
  /** What egress pinning did per address (for the UI). */
  readonly egressStatus = new Map<string, EgressStatus>();
  /** Address -> interface name, as last applied. */
  private applied = new Map<string, string>();
  private readonly onEvent = (): void => this.reconcile();
  private stopped = false;

  constructor(client: BraidClient, watcher: InterfaceWatcher, options: LivePathsOptions) {
    this.client = client;
    this.watcher = watcher;
    this.transport = options.transport ?? 'udp';
    this.allow = options.allow ?? ((u) => !u.ignored);
    this.families = options.families ?? [4];
    this.log = options.logger.child({ component: 'live-paths' });
    this.egress = options.egress;
    // The addresses the client started with count as applied, owned by no uplink yet.
    for (const address of client.uplinkAddresses) this.applied.set(address, '');
  }

  /** Starts following the watcher (which must be started) and applies its current state. */
  start(): void {
    this.watcher.on('added', this.onEvent);
    this.watcher.on('removed', this.onEvent);
    this.watcher.on('changed', this.onEvent);
    this.reconcile();
  }

  stop(): void {
    this.stopped = true;
    this.watcher.off('added', this.onEvent);
    this.watcher.off('removed', this.onEvent);
    this.watcher.off('changed', this.onEvent);
  }

  private async join(address: string, name: string, uplink: Uplink): Promise<unknown[]> {
    const egress = this.egress;
    if (egress !== undefined) {
      const status = await egress.pinner.pin(
        {
          name,
          index: uplink.index,
          address,
          ...(uplink.gateway === undefined ? {} : { gateway: uplink.gateway }),
        },
        egress.destination,
      );
      this.egressStatus.set(address, status);
    }
    return this.client.addUplink(address, this.transport);
  }

  /** Re-evaluates after a rule change (an uplink's role or enable switch). */
  reconcile(): void {
    if (this.stopped) return;
    const wanted = new Map<string, string>();
    const uplinkOf = new Map<string, Uplink>();
    for (const uplink of this.watcher.snapshot()) {
      if (!uplink.up || !this.allow(uplink)) continue;
      for (const a of uplink.addresses) {
        if (!this.families.includes(a.family)) continue;
        // Link-local IPv6 needs a scope id and reaches no relay.
        if (a.family === 6 && a.address.toLowerCase().startsWith('fe80:')) continue;
        wanted.set(a.address, uplink.name);
        uplinkOf.set(a.address, uplink);
      }
    }
    for (const [address, name] of this.applied) {
      if (wanted.has(address)) {
        // An address the client started with is managed from now on.
        if (name === '') this.applied.set(address, wanted.get(address)!);
        continue;
      }
      // Addresses the client started with that no watched uplink reports (a loopback
      // alias, an interface outside `allow`) stay the caller's business.
      if (name !== '') {
        this.applied.delete(address);
        this.client.removeUplink(address, `${name}: address gone`);
        this.egressStatus.delete(address);
        void this.egress?.pinner.unpin(address);
      }
    }
    for (const [address, name] of wanted) {
      if (this.applied.has(address)) continue;
      this.applied.set(address, name);
      this.join(address, name, uplinkOf.get(address)!).then(
        (paths) => this.log.info('uplink joined', { name, address, paths: paths.length }),
        (err: unknown) => {
          this.log.warn('uplink could not join', { name, address, ...errorFields(err) });
          // Forget it, so that the next event retries.
          if (this.applied.get(address) === name) {
            this.applied.delete(address);
            this.client.removeUplink(address, 'join failed');
          }
        },
      );
    }
  }
}
