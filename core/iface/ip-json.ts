import { BraidError } from '../util/errors.js';
import type { UplinkAddress } from './uplink.js';

/**
 * Parsers for the JSON that iproute2 prints (`ip -json`, iproute2 ≥ 4.13). Pure: the
 * unit tests feed them recorded outputs. Fields we do not use are ignored; a field we
 * use with the wrong type is an error that names the command and the value.
 */

/** One interface from `ip -details -json addr show`. */
export interface IpLink {
  index: number;
  name: string;
  flags: string[];
  linkType?: string;
  /** `linkinfo.info_kind` (needs -details). */
  linkKind?: string;
  /** The bridge or bond this interface is a port of. */
  master?: string;
  addresses: UplinkAddress[];
}

/** A default route's next hop, from `ip -json route show table all`. */
export interface DefaultRoute {
  dev: string;
  gateway: string;
  family: 4 | 6;
  /** 'main' where ip omits the table. */
  table: string;
  metric: number;
}

/** One entry of `ip -json neigh show`. */
export interface Neighbour {
  dst: string;
  /** Absent when the query named the device (`ip neigh show dev X` omits it). */
  dev?: string;
  /** NUD states: REACHABLE, STALE, DELAY, PROBE, FAILED, INCOMPLETE, PERMANENT, NOARP. */
  state: string[];
}

type Json = Record<string, unknown>;

function parseArray(text: string, command: string): Json[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new BraidError('BRAID_ERR_INTERNAL', `${command} printed no JSON`, {
      value: text,
      cause: err,
    });
  }
  if (!Array.isArray(parsed)) {
    throw new BraidError('BRAID_ERR_INTERNAL', `${command} printed no JSON array`, {
      value: text,
    });
  }
  return parsed.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new BraidError('BRAID_ERR_INTERNAL', `${command}: entry ${i} is not an object`, {
        value: JSON.stringify(entry),
      });
    }
    return entry as Json;
  });
}

function field<T>(
  entry: Json,
  key: string,
  type: 'string' | 'number' | 'boolean',
  command: string,
): T | undefined {
  const value = entry[key];
  if (value === undefined) return undefined;
  if (typeof value !== type) {
    throw new BraidError('BRAID_ERR_INTERNAL', `${command}: field ${key} is not a ${type}`, {
      value: JSON.stringify(entry),
    });
  }
  return value as T;
}

function required<T>(entry: Json, key: string, type: 'string' | 'number', command: string): T {
  const value = field<T>(entry, key, type, command);
  if (value === undefined) {
    throw new BraidError('BRAID_ERR_INTERNAL', `${command}: field ${key} is missing`, {
      value: JSON.stringify(entry),
    });
  }
  return value;
}

function stringArray(entry: Json, key: string, command: string): string[] {
  const value = entry[key];
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new BraidError('BRAID_ERR_INTERNAL', `${command}: field ${key} is not a string list`, {
      value: JSON.stringify(entry),
    });
  }
  return value;
}

function objectField(entry: Json, key: string, command: string): Json | undefined {
  const value = entry[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BraidError('BRAID_ERR_INTERNAL', `${command}: field ${key} is not an object`, {
      value: JSON.stringify(entry),
    });
  }
  return value as Json;
}

const ADDR = 'ip -json addr show';

/** Parses `ip -details -json addr show`. */
export function parseIpAddr(text: string): IpLink[] {
  return parseArray(text, ADDR).map((entry) => {
    const linkinfo = objectField(entry, 'linkinfo', ADDR);
    const rawAddrs = entry.addr_info ?? [];
    if (!Array.isArray(rawAddrs)) {
      throw new BraidError('BRAID_ERR_INTERNAL', `${ADDR}: addr_info is not a list`, {
        value: JSON.stringify(entry),
      });
    }
    const addresses: UplinkAddress[] = [];
    for (const raw of rawAddrs as unknown[]) {
      if (typeof raw !== 'object' || raw === null) continue;
      const a = raw as Json;
      const family = field<string>(a, 'family', 'string', ADDR);
      // iproute2 prints an empty object for an address it filtered out.
      const local = field<string>(a, 'local', 'string', ADDR);
      if (local === undefined || (family !== 'inet' && family !== 'inet6')) continue;
      // RFC 4862 §5.4: a tentative address is not assigned yet and cannot be bound to.
      if (a.tentative === true || a.dadfailed === true) continue;
      addresses.push({
        address: local,
        family: family === 'inet' ? 4 : 6,
        prefixLength: required<number>(a, 'prefixlen', 'number', ADDR),
      });
    }
    const linkType = field<string>(entry, 'link_type', 'string', ADDR);
    const linkKind =
      linkinfo === undefined ? undefined : field<string>(linkinfo, 'info_kind', 'string', ADDR);
    const master = field<string>(entry, 'master', 'string', ADDR);
    return {
      index: required<number>(entry, 'ifindex', 'number', ADDR),
      name: required<string>(entry, 'ifname', 'string', ADDR),
      flags: stringArray(entry, 'flags', ADDR),
      addresses,
      ...(linkType === undefined ? {} : { linkType }),
      ...(linkKind === undefined ? {} : { linkKind }),
      ...(master === undefined ? {} : { master }),
    };
  });
}

const ROUTE = 'ip -json route show table all';

/**
 * Default routes with a gateway from `ip -json route show table all`, multipath next
 * hops flattened. Routes of type blackhole/unreachable/prohibit/local are not next hops.
 */
export function parseDefaultRoutes(text: string): DefaultRoute[] {
  const out: DefaultRoute[] = [];
  for (const entry of parseArray(text, ROUTE)) {
    const type = field<string>(entry, 'type', 'string', ROUTE) ?? 'unicast';
    const dst = field<string>(entry, 'dst', 'string', ROUTE);
    if (type !== 'unicast' || (dst !== 'default' && dst !== '0.0.0.0/0' && dst !== '::/0'))
      continue;
    // ip prints a table by name ("local", or a name from rt_tables) or by number.
    const rawTable = entry.table;
    const table =
      typeof rawTable === 'string' || typeof rawTable === 'number' ? String(rawTable) : 'main';
    const metric = field<number>(entry, 'metric', 'number', ROUTE) ?? 0;
    const hops = Array.isArray(entry.nexthops) ? (entry.nexthops as unknown[]) : [entry];
    for (const raw of hops) {
      if (typeof raw !== 'object' || raw === null) continue;
      const hop = raw as Json;
      const gateway = field<string>(hop, 'gateway', 'string', ROUTE);
      const dev = field<string>(hop, 'dev', 'string', ROUTE);
      if (gateway === undefined || dev === undefined) continue;
      out.push({ dev, gateway, family: gateway.includes(':') ? 6 : 4, table, metric });
    }
  }
  return out;
}

/**
 * The gateway of each device: its IPv4 default route's next hop if it has one (the
 * paths Braid opens are mostly IPv4), else IPv6; the main table before per-uplink
 * tables (policy routing as in the lab), then the lowest metric.
 */
export function gatewayByDevice(routes: readonly DefaultRoute[]): Map<string, string> {
  const best = new Map<string, DefaultRoute>();
  const rank = (r: DefaultRoute): [number, number, number] => [
    r.family,
    r.table === 'main' ? 0 : 1,
    r.metric,
  ];
  for (const r of routes) {
    const current = best.get(r.dev);
    if (current === undefined) {
      best.set(r.dev, r);
      continue;
    }
    const [a, b] = [rank(r), rank(current)];
    const better = a[0] !== b[0] ? a[0] < b[0] : a[1] !== b[1] ? a[1] < b[1] : a[2] < b[2];
    if (better) best.set(r.dev, r);
  }
  return new Map([...best].map(([dev, r]) => [dev, r.gateway]));
}

const NEIGH = 'ip -json neigh show';

export function parseNeighbours(text: string): Neighbour[] {
  return parseArray(text, NEIGH).flatMap((entry) => {
    const dst = field<string>(entry, 'dst', 'string', NEIGH);
    const dev = field<string>(entry, 'dev', 'string', NEIGH);
    if (dst === undefined) return [];
    return [
      { dst, ...(dev === undefined ? {} : { dev }), state: stringArray(entry, 'state', NEIGH) },
    ];
  });
}
