import { describe, expect, it } from 'vitest';
import { InterfaceUplinkChooser, StaticUplinkChooser } from '../../../core/proxy/direct.js';
import type { Uplink } from '../../../core/iface/uplink.js';

function uplink(
  name: string,
  kind: Uplink['kind'],
  address: string,
  extra: Partial<Uplink> = {},
): Uplink {
  return {
    name,
    index: name.length,
    kind,
    addresses: [{ address, family: address.includes(':') ? 6 : 4, prefixLength: 24 }],
    up: true,
    ignored: false,
    ...extra,
  };
}

describe('uplink choosers', () => {
  it('prefers wired over Wi-Fi over cellular, skipping down, ignored and unreachable uplinks', () => {
    const list = [
      uplink('wwan0', 'cellular', '10.64.0.2'),
      uplink('wlan0', 'wifi', '192.168.1.20', { gatewayReachable: true }),
      uplink('eth0', 'ethernet', '192.168.2.20', { gatewayReachable: false }),
      uplink('eth1', 'ethernet', '192.168.3.20', { up: false }),
      uplink('docker0', 'ethernet', '172.17.0.1', { ignored: true }),
    ];
    const chooser = new InterfaceUplinkChooser(() => list);
    expect(chooser.choose('throughput')).toEqual({ name: 'wlan0', address: '192.168.1.20' });
    expect(chooser.choose('latency', new Set(['wlan0']))).toEqual({
      name: 'wwan0',
      address: '10.64.0.2',
    });
    expect(chooser.choose('loss', new Set(['wlan0', 'wwan0']))).toBeUndefined();
  });

  it('picks a routable address over a link-local one', () => {
    const u: Uplink = {
      ...uplink('eth0', 'ethernet', 'fe80::1'),
      addresses: [
        { address: 'fe80::1', family: 6, prefixLength: 64 },
        { address: '2001:db8::5', family: 6, prefixLength: 64 },
      ],
    };
    expect(new InterfaceUplinkChooser(() => [u]).choose('latency')?.address).toBe('2001:db8::5');
  });

  it('walks a static list in order, minus the excluded', () => {
    const chooser = new StaticUplinkChooser([
      { name: 'a', address: '127.0.0.2' },
      { name: 'b', address: '127.0.0.3' },
    ]);
    expect(chooser.choose('jitter')?.name).toBe('a');
    expect(chooser.choose('jitter', new Set(['a']))?.name).toBe('b');
  });
});
