import { execFile } from 'node:child_process';
import { BraidError } from '../util/errors.js';
import { errorFields, type Logger } from '../util/log.js';

/** One uplink whose paths must leave through its own device. */
export interface EgressUplink {
  /** Interface name (device). */
  name: string;
  /** Kernel interface index; chooses the routing table, so it is stable per device. */
  index: number;
  /** The local address the paths bind to. */
  address: string;
  /** Next hop of the uplink's default route, when the watcher knows it. */
  gateway?: string;
}

/**
 * What Braid did for an uplink's egress (shown in the UI and the logs):
 * - 'routed': the OS already sends packets from this address out of this device.
 * - 'pinned': Braid added a routing table and a `from <address>` rule for it.
 * - 'unpinned': it is needed but Braid could not: the reason says why (no
 *   CAP_NET_ADMIN, not Linux); paths from this address then leave wherever the
 *   main table says.
 */
export type EgressStatus =
  | { kind: 'routed'; device: string }
  | { kind: 'pinned'; table: number; preference: number }
  | { kind: 'unpinned'; reason: string; device?: string };

export interface EgressOptions {
  logger: Logger;
  /** First routing table / rule preference Braid uses (plus the interface index). */
  tableBase?: number;
  preferenceBase?: number;
  /** Runs `ip` with arguments; injected only to run inside a namespace. */
  ip?: (args: readonly string[]) => Promise<string>;
  platform?: NodeJS.Platform;
}

function runIp(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 5000 }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(
          new BraidError(
            'BRAID_ERR_TRANSPORT',
            `ip ${args.join(' ')}: ${stderr.trim() || err.message}`,
            {
              cause: err,
            },
          ),
        );
        return;
      }
      resolve(stdout);
    });
  });
}

/**
 * Egress pinning (DESIGN §5; issue: uplinks, item 2). Binding a socket to an
 * uplink's address is not enough on Linux when the main table has one default route:
 * the packet still leaves through that route's device, with the wrong source for it,
 * and the uplink is never used. For each uplink Braid asks the kernel which device a
 * packet from its address takes (`ip route get <probe> from <address>`); where that
 * is not the uplink's own device it installs policy routing, as a multihomed laptop
 * set up by hand would have: table `tableBase + index` with the uplink's default
 * route, and a rule `from <address> lookup <table>`. This needs CAP_NET_ADMIN; without
 * it the uplink is reported 'unpinned' with the reason, and its paths leave by the
 * main table. SO_BINDTODEVICE would also need a privilege (CAP_NET_RAW) and Node does
 * not expose it, so policy routing is the one mechanism. macOS and Windows choose the
 * interface from the bound source address for most set-ups; there Braid binds the
 * address and reports 'unpinned' only as a note.
 */
export class EgressPinner {
  private readonly log: Logger;
  private readonly tableBase: number;
  private readonly preferenceBase: number;
  private readonly ip: (args: readonly string[]) => Promise<string>;
  private readonly platform: NodeJS.Platform;
  /** Rules and tables Braid installed, by address, to remove them again. */
  private readonly installed = new Map<string, { table: number; preference: number }>();

  constructor(options: EgressOptions) {
    this.log = options.logger.child({ component: 'egress' });
    this.tableBase = options.tableBase ?? 17000;
    this.preferenceBase = options.preferenceBase ?? 17000;
    this.ip = options.ip ?? runIp;
    this.platform = options.platform ?? process.platform;
  }

  /** Device a packet from `address` to `destination` leaves by, per the kernel. */
  async egressDevice(address: string, destination: string): Promise<string | undefined> {
    const out = await this.ip(['-json', 'route', 'get', destination, 'from', address]);
    const routes = JSON.parse(out) as Array<{ dev?: string }>;
    return routes[0]?.dev;
  }

  /** Makes paths from `uplink.address` to `destination` leave by `uplink.name`. */
  async pin(uplink: EgressUplink, destination: string): Promise<EgressStatus> {
    if (this.platform !== 'linux') {
      return {
        kind: 'unpinned',
        reason: `${this.platform}: Braid binds the address; the OS picks the interface from it`,
      };
    }
    let device: string | undefined;
    try {
      device = await this.egressDevice(uplink.address, destination);
    } catch (err) {
      return { kind: 'unpinned', reason: `route lookup failed: ${(err as Error).message}` };
    }
    if (device === uplink.name) return { kind: 'routed', device };
    const table = this.tableBase + uplink.index;
    const preference = this.preferenceBase + uplink.index;
    const route =
      uplink.gateway === undefined
        ? ['route', 'replace', 'default', 'dev', uplink.name, 'table', String(table)]
        : [
            'route',
            'replace',
            'default',
            'via',
            uplink.gateway,
            'dev',
            uplink.name,
            'table',
            String(table),
          ];
    try {
      await this.ip(route);
      // Replace any earlier rule of ours at this preference (an old address). Its
      // absence is the usual case, so that failure is expected and not reported.
      await this.ip(['rule', 'del', 'pref', String(preference)]).catch((err: unknown) =>
        this.log.debug('no earlier egress rule', { preference, ...errorFields(err) }),
      );
      await this.ip([
        'rule',
        'add',
        'from',
        uplink.address,
        'lookup',
        String(table),
        'pref',
        String(preference),
      ]);
    } catch (err) {
      const message = (err as Error).message;
      const reason = /Operation not permitted|RTNETLINK answers: Permission denied/i.test(message)
        ? 'needs CAP_NET_ADMIN to add policy routing (run the engine with that capability)'
        : message;
      this.log.warn('uplink egress not pinned', {
        uplink: uplink.name,
        address: uplink.address,
        leavesBy: device,
        reason,
      });
      return { kind: 'unpinned', reason, ...(device === undefined ? {} : { device }) };
    }
    this.installed.set(uplink.address, { table, preference });
    const after = await this.egressDevice(uplink.address, destination).catch((err: unknown) => {
      this.log.warn('route lookup after pinning failed', {
        uplink: uplink.name,
        ...errorFields(err),
      });
      return undefined;
    });
    if (after !== uplink.name) {
      this.log.warn('policy routing installed but packets still leave elsewhere', {
        uplink: uplink.name,
        leavesBy: after,
      });
      return {
        kind: 'unpinned',
        reason: `after pinning, packets still leave by ${after ?? 'no device'}`,
      };
    }
    this.log.info('uplink egress pinned', {
      uplink: uplink.name,
      address: uplink.address,
      table,
      preference,
    });
    return { kind: 'pinned', table, preference };
  }

  /** Removes what `pin` installed for this address. */
  async unpin(address: string): Promise<void> {
    const entry = this.installed.get(address);
    if (entry === undefined) return;
    this.installed.delete(address);
    try {
      await this.ip(['rule', 'del', 'from', address, 'lookup', String(entry.table)]);
      await this.ip(['route', 'flush', 'table', String(entry.table)]);
    } catch (err) {
      this.log.warn('could not remove egress pinning', { address, ...errorFields(err) });
    }
  }

  async unpinAll(): Promise<void> {
    for (const address of [...this.installed.keys()]) await this.unpin(address);
  }
}
