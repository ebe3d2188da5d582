import type { NetworkInterfaceInfo } from 'node:os';
import type { UplinkAddress } from './uplink.js';

/** One interface as the polling fallback sees it through `os.networkInterfaces()`. */
export interface PolledInterface {
  name: string;
  internal: boolean;
  addresses: UplinkAddress[];
}

function prefixFromNetmask(netmask: string): number {
  if (netmask.includes(':')) {
    return netmask
      .split(':')
      .filter((g) => g !== '')
      .reduce((n, g) => n + popcount(parseInt(g, 16)), 0);
  }
  return netmask.split('.').reduce((n, octet) => n + popcount(Number(octet)), 0);
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x; v > 0; v >>>= 1) n += v & 1;
  return n;
}

/**
 * Pure conversion of `os.networkInterfaces()`. libuv lists only interfaces that are
 * up and running (uv_interface_addresses skips the others) and only those with an
 * address, so an interface that goes down or loses its last address disappears.
 */
export function fromNetworkInterfaces(
  table: NodeJS.Dict<NetworkInterfaceInfo[]>,
): PolledInterface[] {
  const out: PolledInterface[] = [];
  for (const [name, infos] of Object.entries(table)) {
    if (infos === undefined) continue;
    const addresses: UplinkAddress[] = [];
    let internal = false;
    for (const info of infos) {
      internal ||= info.internal;
      // Node 18.0–18.3 reported the family as a number.
      const family: 4 | 6 = (info.family as unknown) === 6 || info.family === 'IPv6' ? 6 : 4;
      const cidrPrefix = info.cidr === null ? undefined : Number(info.cidr.split('/')[1]);
      addresses.push({
        address: info.address,
        family,
        prefixLength:
          cidrPrefix !== undefined && Number.isInteger(cidrPrefix)
            ? cidrPrefix
            : prefixFromNetmask(info.netmask),
      });
    }
    out.push({ name, internal, addresses });
  }
  return out;
}
