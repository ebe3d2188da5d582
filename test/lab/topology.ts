import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Writable } from 'node:stream';
import { BraidError } from '../../core/util/errors.js';
import { createLogger, type Logger } from '../../core/util/log.js';
import { LinkHandle } from './link.js';
import type { DirectionParams } from './link-model.js';
import {
  deleteNamespaceSync,
  ip,
  ipBatch,
  ipSync,
  isAlive,
  listNamespaces,
  nsRun,
  nsSpawn,
} from './netns.js';

/**
 * The lab's hosts: a client namespace with N uplinks (a multihomed laptop after
 * set-up: each uplink its own subnet, its own routing table and a source rule, the
 * main table's default route on uplink 0 with the others as higher-metric
 * fallbacks) and a server namespace reachable over every uplink. Each uplink is one
 * emulated link: a TUN device in each namespace joined by a forwarder process.
 *
 *   client ns                  forwarder i               server ns
 *   up<i> 10.10.<i>.2/24  <-- c2s / s2c models -->  dn<i> 10.10.<i>.1/24
 *                                                    lo: 10.200.<j>.1/32 (server addresses)
 *
 * A multihomed server (serverAddresses > 1) has several addresses, each reachable
 * over every uplink, so n x m address pairs exist while the bottlenecks stay the
 * client's uplinks, as for a laptop talking to a well-connected relay.
 *
 * Nothing outlives the run: names carry the owner's pid (`braidlab-<pid>-<k>-client`);
 * teardown runs on close, on process exit and on SIGINT/SIGTERM; a detached reaper
 * process deletes the namespaces when the owner dies even by SIGKILL; forwarders
 * exit when the pipe from the owner closes, and their TUN devices go with them; and
 * create() first sweeps what dead owners left behind.
 */

export const NAME_PREFIX = 'braidlab-';
/** TUN names live briefly in the root namespace before the move; IFNAMSIZ allows 15 bytes. */
const DEVICE_PREFIX = 'bl-';
const TABLE_BASE = 100;
const RULE_PREF_BASE = 1000;

export interface UplinkSpec {
  name: string;
  /** Client to server (upload) direction. */
  c2s: Partial<DirectionParams>;
  /** Server to client (download) direction. */
  s2c: Partial<DirectionParams>;
  seed?: number;
}

export interface TopologyOptions {
  uplinks: UplinkSpec[];
  /** Number of server addresses; more than 1 makes a multihomed server. */
  serverAddresses?: number;
  /** TCP congestion control in both namespaces; the kernel default when absent. */
  congestionControl?: string;
  /** Configure MPTCP endpoints (one `subflow` endpoint per uplink) and limits. */
  mptcp?: boolean;
  /**
   * The client's main table gets one default route, via uplink 0, instead of one
   * per uplink by metric (default false). With the source rules kept, a socket bound
   * to an uplink's address still leaves through that uplink while an unbound one
   * always takes uplink 0: for egress pinning tests.
   */
  singleDefaultRoute?: boolean;
  /**
   * A routing table and a `from <address>` rule per uplink (default true). Without
   * them, only the main table routes, as on a host where nothing set up source
   * routing; then only an application that pins its egress device can use the
   * other uplinks.
   */
  sourceRouting?: boolean;
  /**
   * A link that every uplink's traffic crosses on its way to the server: the
   * uplinks end in a router namespace, which forwards over this one link to the
   * server namespace (for coupled congestion control fairness tests).
   */
  bottleneck?: Omit<UplinkSpec, 'name'>;
  log?: Logger;
}

export interface Uplink {
  name: string;
  index: number;
  /** The client's address on this uplink. */
  address: string;
  /** The server-side end of the link (the uplink's gateway). */
  gateway: string;
  /** Device names inside the client and server namespaces. */
  clientDevice: string;
  serverDevice: string;
  /** Its routing table (absent when sourceRouting is false). */
  table: number;
  link: LinkHandle;
}

export type Side = 'client' | 'server';

const live = new Set<Topology>();
let counter = 0;
let handlersInstalled = false;

export class Topology {
  readonly id: string;
  readonly clientNs: string;
  readonly serverNs: string;
  readonly uplinks: Uplink[] = [];
  readonly serverAddresses: string[];
  /** With a shared bottleneck: the router namespace where the uplinks end. */
  readonly routerNs: string | undefined;
  /** The shared bottleneck's link (client side in the router, server side in the server namespace). */
  bottleneck: LinkHandle | undefined;
  private readonly log: Logger;
  private reaper: ChildProcess | null = null;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(options: TopologyOptions) {
    this.id = `${NAME_PREFIX}${process.pid}-${counter++}`;
    this.clientNs = `${this.id}-client`;
    this.serverNs = `${this.id}-server`;
    const n = options.serverAddresses ?? 1;
    this.serverAddresses = Array.from({ length: n }, (_, j) => `10.200.${j}.1`);
    this.routerNs = options.bottleneck === undefined ? undefined : `${this.id}-router`;
    this.log = (options.log ?? createLogger()).child({ lab: this.id });
  }

  /** The first server address, the one a single-homed server has. */
  get serverAddress(): string {
    return this.serverAddresses[0]!;
  }

  static async create(options: TopologyOptions): Promise<Topology> {
    if (options.uplinks.length === 0 || options.uplinks.length > 50) {
      throw new BraidError('BRAID_ERR_CONFIG', 'a topology needs 1 to 50 uplinks', {
        value: options.uplinks.length,
      });
    }
    sweepStale();
    installExitHandlers();
    const topo = new Topology(options);
    live.add(topo);
    try {
      await topo.build(options);
    } catch (err) {
      await topo.destroy();
      throw err;
    }
    return topo;
  }

  ns(side: Side): string {
    return side === 'client' ? this.clientNs : this.serverNs;
  }

  /** Runs a command to completion inside a namespace; returns its stdout. */
  exec(side: Side, cmd: string, args: readonly string[]): Promise<string> {
    return nsRun(this.ns(side), cmd, args);
  }

  /** Starts a process inside a namespace; destroy() kills it if it is still running. */
  spawn(
    side: Side,
    cmd: string,
    args: readonly string[],
    options: SpawnOptions = {},
  ): ChildProcess {
    const child = nsSpawn(this.ns(side), cmd, args, options);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  uplink(name: string): Uplink {
    const found = this.uplinks.find((u) => u.name === name);
    if (found === undefined)
      throw new BraidError('BRAID_ERR_CONFIG', 'no such uplink', { value: name });
    return found;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    // A child whose stdin the runner ended is finishing on its own: the lab relay
    // removes its folder of keys then (killed at once, it left one in /tmp per run).
    await Promise.all(
      [...this.children]
        .filter((c) => c.stdin?.writableEnded === true)
        .map((c) => exitedWithin(c, CHILD_GRACE_MS)),
    );
    for (const child of this.children) child.kill('SIGKILL');
    await Promise.all(this.uplinks.map((u) => u.link.close()));
    await this.bottleneck?.close();
    for (const ns of this.namespaces()) deleteNamespaceSync(ns);
    this.stopReaper();
  }

  /** Synchronous teardown for exit and signal handlers. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const child of this.children) child.kill('SIGKILL');
    for (const u of this.uplinks) u.link.killSync();
    this.bottleneck?.killSync();
    for (const ns of this.namespaces()) deleteNamespaceSync(ns);
    this.stopReaper();
  }

  private namespaces(): string[] {
    return [this.clientNs, this.serverNs, ...(this.routerNs === undefined ? [] : [this.routerNs])];
  }

  private async build(options: TopologyOptions): Promise<void> {
    this.startReaper();
    for (const ns of this.namespaces()) await ip('netns', 'add', ns);
    const cc = options.congestionControl;
    for (const ns of this.namespaces()) {
      const sysctls = [
        // Strict reverse-path filtering would drop replies arriving on a non-default uplink.
        'net.ipv4.conf.all.rp_filter=0',
        'net.ipv4.conf.default.rp_filter=0',
        // IPv6 router solicitations would be the only other traffic on the links.
        'net.ipv6.conf.all.disable_ipv6=1',
        'net.ipv6.conf.default.disable_ipv6=1',
        'net.mptcp.enabled=1',
      ];
      if (cc !== undefined) sysctls.push(`net.ipv4.tcp_congestion_control=${cc}`);
      await nsRun(ns, 'sysctl', ['-q', '-w', ...sysctls]);
    }

    const pid36 = process.pid.toString(36);
    const k36 = this.id.slice(this.id.lastIndexOf('-') + 1);
    // Where the uplinks' far ends live: the server, or the router before the bottleneck.
    const gatewayNs = this.routerNs ?? this.serverNs;
    const handles = await Promise.all(
      options.uplinks.map((spec, i) =>
        LinkHandle.spawn({
          clientTun: `${DEVICE_PREFIX}${pid36}-${k36}c${i}`,
          serverTun: `${DEVICE_PREFIX}${pid36}-${k36}s${i}`,
          c2s: spec.c2s,
          s2c: spec.s2c,
          seed: spec.seed ?? 1 + i,
        }),
      ),
    );
    const clientLines: string[] = ['link set lo up'];
    const serverLines: string[] = ['link set lo up'];
    for (const a of this.serverAddresses) serverLines.push(`addr add ${a}/32 dev lo`);
    const rootLines: string[] = [];
    const routerLines: string[] = ['link set lo up'];
    if (options.bottleneck !== undefined && this.routerNs !== undefined) {
      // Router bn 10.199.0.1 <-> server bn 10.199.0.2; the TUN names' index follows the uplinks'.
      const k = options.uplinks.length;
      this.bottleneck = await LinkHandle.spawn({
        clientTun: `${DEVICE_PREFIX}${pid36}-${k36}c${k}`,
        serverTun: `${DEVICE_PREFIX}${pid36}-${k36}s${k}`,
        c2s: options.bottleneck.c2s,
        s2c: options.bottleneck.s2c,
        seed: options.bottleneck.seed ?? 1 + k,
      });
      rootLines.push(
        `link set dev ${DEVICE_PREFIX}${pid36}-${k36}c${k} netns ${this.routerNs} name bn`,
        `link set dev ${DEVICE_PREFIX}${pid36}-${k36}s${k} netns ${this.serverNs} name bn`,
      );
      routerLines.push(
        'addr add 10.199.0.1/30 dev bn',
        'link set bn up',
        'route add 10.200.0.0/16 via 10.199.0.2 dev bn',
      );
      serverLines.push(
        'addr add 10.199.0.2/30 dev bn',
        'link set bn up',
        'route add default via 10.199.0.1 dev bn',
      );
      await nsRun(this.routerNs, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    }
    options.uplinks.forEach((spec, i) => {
      const clientDevice = `up${i}`;
      const serverDevice = `dn${i}`;
      const address = `10.10.${i}.2`;
      const gateway = `10.10.${i}.1`;
      const table = TABLE_BASE + i;
      rootLines.push(
        `link set dev ${DEVICE_PREFIX}${pid36}-${k36}c${i} netns ${this.clientNs} name ${clientDevice}`,
        `link set dev ${DEVICE_PREFIX}${pid36}-${k36}s${i} netns ${gatewayNs} name ${serverDevice}`,
      );
      clientLines.push(`addr add ${address}/24 dev ${clientDevice}`, `link set ${clientDevice} up`);
      if (options.sourceRouting ?? true) {
        clientLines.push(
          `route add default via ${gateway} dev ${clientDevice} table ${table}`,
          `rule add from ${address} table ${table} pref ${RULE_PREF_BASE + i}`,
        );
      }
      if (options.singleDefaultRoute !== true || i === 0) {
        clientLines.push(
          `route add default via ${gateway} dev ${clientDevice} metric ${100 * (i + 1)}`,
        );
      }
      (this.routerNs === undefined ? serverLines : routerLines).push(
        `addr add ${gateway}/24 dev ${serverDevice}`,
        `link set ${serverDevice} up`,
      );
      this.uplinks.push({
        name: spec.name,
        index: i,
        address,
        gateway,
        clientDevice,
        serverDevice,
        table,
        link: handles[i]!,
      });
    });
    if (options.mptcp === true) {
      const n = options.uplinks.length;
      // One subflow per extra uplink and per server address (RFC 8684 §3.2 joins).
      const limit = Math.min(8, n * this.serverAddresses.length);
      clientLines.push(
        `mptcp limits set subflow ${limit} add_addr_accepted ${Math.min(8, this.serverAddresses.length)}`,
      );
      this.uplinks.forEach((u) =>
        clientLines.push(`mptcp endpoint add ${u.address} dev ${u.clientDevice} subflow`),
      );
      serverLines.push(`mptcp limits set subflow ${limit} add_addr_accepted 0`);
      // Extra server addresses are announced to the client (ADD_ADDR).
      this.serverAddresses
        .slice(1)
        .forEach((a) => serverLines.push(`mptcp endpoint add ${a} dev lo signal`));
    }
    await ipBatch(rootLines);
    await ipBatch(clientLines, this.clientNs);
    if (this.routerNs !== undefined) await ipBatch(routerLines, this.routerNs);
    await ipBatch(serverLines, this.serverNs);
    this.log.info('lab topology up', {
      client: this.clientNs,
      server: this.serverNs,
      uplinks: options.uplinks.map((u) => u.name).join(','),
    });
  }

  /**
   * A detached shell that waits for our end of its stdin to close (we died, however)
   * and then deletes this topology's namespaces and kills what ran inside them.
   */
  private startReaper(): void {
    const script = [
      'cat >/dev/null',
      `for ns in ${this.namespaces().join(' ')}; do`,
      '  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done',
      '  ip netns del "$ns" 2>/dev/null',
      'done',
    ].join('\n');
    const reaper = spawn('sh', ['-c', script], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    reaper.unref();
    (reaper.stdin as Writable & { unref?: () => void }).unref?.();
    reaper.on('error', (err) => this.log.warn('lab reaper failed', { err: String(err) }));
    this.reaper = reaper;
  }

  private stopReaper(): void {
    // Closing its stdin lets it run its (now idempotent) cleanup and exit.
    this.reaper?.stdin?.end();
    this.reaper = null;
  }
}

/**
 * Deletes namespaces and root-namespace TUN devices whose owning process is gone
 * (a run killed before its reaper could act, e.g. the machine was rebooted mid-run
 * with /run persistent). Other live runs' resources are left alone.
 */
export function sweepStale(): string[] {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = /^braidlab-(\d+)-/.exec(ns);
    if (m === null) continue;
    const owner = Number(m[1]);
    if (owner === process.pid && [...live].some((t) => t.clientNs === ns || t.serverNs === ns))
      continue;
    if (owner !== process.pid && isAlive(owner)) continue;
    deleteNamespaceSync(ns);
    removed.push(ns);
  }
  const links = ipSync(['-o', 'link', 'show']).stdout;
  for (const m of links.matchAll(/^\d+: (bl-([0-9a-z]+)-[0-9a-z]+[cs]\d+)[:@]/gm)) {
    const owner = parseInt(m[2]!, 36);
    if (owner !== process.pid && isAlive(owner)) continue;
    if (owner === process.pid && live.size > 0) continue;
    ipSync(['link', 'del', m[1]!]);
    removed.push(m[1]!);
  }
  return removed;
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', destroyAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      destroyAllSync();
      process.off(signal, handler);
      // Die of the same signal, as if we had not caught it.
      process.kill(process.pid, signal);
    };
    process.on(signal, handler);
  }
}

function destroyAllSync(): void {
  for (const topo of [...live]) topo.destroySync();
}

/** How long destroy() waits for a child whose stdin was ended before it kills it. */
const CHILD_GRACE_MS = 1000;

function exitedWithin(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
