import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { fromNetworkInterfaces } from '../../../core/iface/os-interfaces.js';
import { fixture } from './fixtures.js';

describe('fromNetworkInterfaces (polling fallback)', () => {
  it('converts a recorded os.networkInterfaces() table', () => {
    const table = JSON.parse(fixture('os-network-interfaces-host.json')) as NodeJS.Dict<
      NetworkInterfaceInfo[]
    >;
    const list = fromNetworkInterfaces(table);
    expect(list.find((i) => i.name === 'lo')).toEqual({
      name: 'lo',
      internal: true,
      addresses: [
        { address: '127.0.0.1', family: 4, prefixLength: 8 },
        { address: '::1', family: 6, prefixLength: 128 },
      ],
    });
    expect(list.find((i) => i.name === 'eth0')).toMatchObject({ internal: false });
    expect(list.find((i) => i.name === 'eth0')!.addresses).toContainEqual({
      address: 'fe80::fc:ff:fe00:1',
      family: 6,
      prefixLength: 64,
    });
  });

  it('derives the prefix from the netmask when cidr is null and accepts numeric families', () => {
    const table = {
      en0: [
        {
          address: '192.168.1.20',
          netmask: '255.255.254.0',
          family: 'IPv4',
          mac: '00:00:00:00:00:00',
          internal: false,
          cidr: null,
        },
        {
          address: 'fe80::1',
          netmask: 'ffff:ffff:ffff:ffff::',
          family: 6,
          mac: '00:00:00:00:00:00',
          internal: false,
          cidr: null,
          scopeid: 4,
        },
      ],
    } as unknown as NodeJS.Dict<NetworkInterfaceInfo[]>;
    expect(fromNetworkInterfaces(table)[0]!.addresses).toEqual([
      { address: '192.168.1.20', family: 4, prefixLength: 23 },
      { address: 'fe80::1', family: 6, prefixLength: 64 },
    ]);
  });
});
