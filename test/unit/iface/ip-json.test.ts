import { describe, expect, it } from 'vitest';
import {
  gatewayByDevice,
  parseDefaultRoutes,
  parseIpAddr,
  parseNeighbours,
  type DefaultRoute,
} from '../../../core/iface/ip-json.js';
import { reachabilityFromNeighbour } from '../../../core/iface/gateway-probe.js';
import { isBraidError } from '../../../core/util/errors.js';
import { fixture } from './fixtures.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isBraidError(err) ? err.code : 'not a BraidError';
  }
  return undefined;
}

describe('parseIpAddr (ip -details -json addr show)', () => {
  const links = parseIpAddr(fixture('addr-lab.json'));
  const byName = new Map(links.map((l) => [l.name, l]));

  it('reads index, flags, link type and link kind of every interface', () => {
    expect(links.map((l) => l.name)).toEqual(['lo', 'gw0', 'up0', 'gw1', 'up1', 'br-3f2a', 'tun0']);
    expect(byName.get('lo')).toMatchObject({ index: 1, linkType: 'loopback' });
    expect(byName.get('lo')!.flags).toContain('LOOPBACK');
    expect(byName.get('up0')).toMatchObject({ linkType: 'ether', linkKind: 'veth' });
    expect(byName.get('tun0')).toMatchObject({ linkType: 'none', linkKind: 'tun', addresses: [] });
    expect(byName.get('br-3f2a')!.linkKind).toBe('bridge');
  });

  it('names the bridge an interface is a port of', () => {
    expect(byName.get('gw1')!.master).toBe('br-3f2a');
    expect(byName.get('up1')!.master).toBeUndefined();
  });

  it('leaves out addresses still in duplicate address detection', () => {
    // up0 had fd01::2 and its link-local address both tentative when recorded.
    expect(byName.get('up0')!.addresses).toEqual([
      { address: '10.10.0.2', family: 4, prefixLength: 24 },
    ]);
  });

  it('reads IPv4, global IPv6 and link-local IPv6 addresses with their prefix lengths', () => {
    const eth0 = parseIpAddr(fixture('addr-host.json')).find((l) => l.name === 'eth0')!;
    expect(eth0.addresses).toEqual([
      { address: '192.0.2.2', family: 4, prefixLength: 24 },
      { address: 'fd00::2', family: 6, prefixLength: 64 },
      { address: 'fe80::fc:ff:fe00:1', family: 6, prefixLength: 64 },
    ]);
    expect(eth0.linkKind).toBeUndefined();
  });

  it('rejects the text that ip monitor prints on iproute2 6.1 instead of JSON', () => {
    const recorded = '3: v0    inet 10.9.0.2/24 scope global v0\n       valid_lft forever';
    expect(codeOf(() => parseIpAddr(recorded))).toBe('BRAID_ERR_INTERNAL');
  });

  it('rejects entries whose used fields have the wrong type', () => {
    expect(codeOf(() => parseIpAddr('{"ifindex":1}'))).toBe('BRAID_ERR_INTERNAL');
    expect(codeOf(() => parseIpAddr('[{"ifindex":"1","ifname":"x"}]'))).toBe('BRAID_ERR_INTERNAL');
    expect(codeOf(() => parseIpAddr('[{"ifname":"x"}]'))).toBe('BRAID_ERR_INTERNAL');
    expect(codeOf(() => parseIpAddr('[{"ifindex":1,"ifname":"x","flags":"UP"}]'))).toBe(
      'BRAID_ERR_INTERNAL',
    );
    expect(codeOf(() => parseIpAddr('[3]'))).toBe('BRAID_ERR_INTERNAL');
  });
});

describe('default routes and the gateway of each device', () => {
  it('finds per-uplink-table and main-table defaults, skips blackholes, prefers IPv4', () => {
    const routes = parseDefaultRoutes(fixture('route-lab.json'));
    expect(routes.some((r) => r.table === '102')).toBe(false);
    expect(routes.filter((r) => r.dev === 'up0').map((r) => r.table)).toEqual([
      '100',
      'main',
      'main',
    ]);
    expect(Object.fromEntries(gatewayByDevice(routes))).toEqual({
      up0: '10.10.0.1',
      up1: '10.10.1.1',
    });
  });

  it('flattens multipath next hops and keeps defaults that exist only in a per-uplink table', () => {
    const routes = parseDefaultRoutes(fixture('route-multipath.json'));
    expect(Object.fromEntries(gatewayByDevice(routes))).toEqual({
      up0: '10.10.0.1',
      up1: '10.10.1.1',
      up2: '10.10.2.1',
    });
  });

  it('reads the host default gateway', () => {
    const routes = parseDefaultRoutes(fixture('route-host.json'));
    expect(gatewayByDevice(routes).get('eth0')).toBe('192.0.2.1');
  });

  it('ranks IPv4 before IPv6, the main table before others, then the lower metric', () => {
    const r = (dev: string, gateway: string, table: string, metric: number): DefaultRoute => ({
      dev,
      gateway,
      family: gateway.includes(':') ? 6 : 4,
      table,
      metric,
    });
    const best = gatewayByDevice([
      r('a', 'fe80::1', 'main', 0),
      r('a', '10.0.0.9', '100', 0),
      r('a', '10.0.0.1', 'main', 600),
      r('a', '10.0.0.2', 'main', 100),
      r('b', 'fe80::2', 'main', 1024),
      r('b', 'fe80::3', 'main', 100),
    ]);
    expect(best.get('a')).toBe('10.0.0.2');
    expect(best.get('b')).toBe('fe80::3');
  });

  it('accepts 0.0.0.0/0 and ::/0 spelled out and numeric table ids', () => {
    const routes = parseDefaultRoutes(
      JSON.stringify([
        { dst: '0.0.0.0/0', gateway: '10.1.1.1', dev: 'x', table: 7 },
        { dst: '::/0', gateway: 'fd00::1', dev: 'y' },
        { dst: '10.0.0.0/8', gateway: '10.1.1.1', dev: 'z' },
      ]),
    );
    expect(routes).toEqual([
      { dev: 'x', gateway: '10.1.1.1', family: 4, table: '7', metric: 0 },
      { dev: 'y', gateway: 'fd00::1', family: 6, table: 'main', metric: 0 },
    ]);
  });
});

describe('neighbour state as evidence of a gateway answering', () => {
  it('maps an unanswered ARP (INCOMPLETE, recorded right after a lost ping) to false', () => {
    const [entry] = parseNeighbours(fixture('neigh-lab.json'));
    expect(entry).toEqual({ dst: '10.10.0.1', dev: 'up0', state: ['INCOMPLETE'] });
    expect(reachabilityFromNeighbour(entry!.state)).toBe(false);
  });

  it('treats only REACHABLE as an answer and STALE, PROBE, PERMANENT or NOARP as unknown', () => {
    const host = parseNeighbours(fixture('neigh-host.json'));
    // Recorded after a ping answered (v4) and an IPv6 gateway that never did.
    expect(reachabilityFromNeighbour(host.find((n) => n.dst === '192.0.2.1')!.state)).toBe(true);
    expect(reachabilityFromNeighbour(host.find((n) => n.dst === 'fd00::1')!.state)).toBe(false);
    for (const s of ['STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']) {
      expect(reachabilityFromNeighbour([s])).toBeUndefined();
    }
  });

  it('keeps entries printed without a device (the query named it)', () => {
    expect(parseNeighbours('[{"dst":"10.0.0.1","state":["REACHABLE"]}]')).toEqual([
      { dst: '10.0.0.1', state: ['REACHABLE'] },
    ]);
  });
});
