import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  classifyInterface,
  readSysfsFacts,
  type InterfaceFacts,
} from '../../../core/iface/classify.js';
import type { UplinkKind } from '../../../core/iface/uplink.js';

/** Facts as Linux reports them for common hardware (from sysfs of real machines). */
const CASES: Array<[string, InterfaceFacts, UplinkKind]> = [
  ['loopback by link type', { name: 'lo', linkType: 'loopback', hasDevice: false }, 'loopback'],
  ['loopback by Node internal flag', { name: 'lo0', loopback: true }, 'loopback'],
  [
    'Intel Wi-Fi card (wireless dir)',
    {
      name: 'wlp2s0',
      linkType: 'ether',
      wireless: true,
      devType: 'wlan',
      driver: 'iwlwifi',
      hasDevice: true,
    },
    'wifi',
  ],
  [
    'USB Wi-Fi dongle with only phy80211',
    {
      name: 'wlx00c0ca123456',
      linkType: 'ether',
      wireless: true,
      driver: 'rt2800usb',
      hasDevice: true,
    },
    'wifi',
  ],
  [
    'Android USB tether (RNDIS) under a predictable name',
    { name: 'enx0a1b2c3d4e5f', linkType: 'ether', driver: 'rndis_host', hasDevice: true },
    'cellular',
  ],
  [
    'iPhone USB tether (ipheth) named like Ethernet',
    { name: 'eth1', linkType: 'ether', driver: 'ipheth', hasDevice: true },
    'cellular',
  ],
  [
    'Qualcomm modem, raw IP',
    {
      name: 'wwp0s20f0u6i12',
      linkType: 'none',
      driver: 'qmi_wwan',
      devType: 'wwan',
      hasDevice: true,
    },
    'cellular',
  ],
  [
    'CDC NCM modem',
    { name: 'wwan0', linkType: 'ether', driver: 'cdc_ncm', hasDevice: true },
    'cellular',
  ],
  ['rmnet by name only', { name: 'rmnet_data0', linkType: 'none', hasDevice: false }, 'cellular'],
  ['usb0 gadget by name', { name: 'usb0', linkType: 'ether', hasDevice: false }, 'cellular'],
  [
    'PCI Ethernet',
    { name: 'enp3s0', linkType: 'ether', driver: 'r8169', hasDevice: true },
    'ethernet',
  ],
  [
    'virtio NIC of a VM',
    { name: 'eth0', linkType: 'ether', driver: 'virtio_net', hasDevice: true },
    'ethernet',
  ],
  [
    'USB Ethernet adapter',
    { name: 'enx001122334455', linkType: 'ether', driver: 'ax88179_178a', hasDevice: true },
    'ethernet',
  ],
  [
    'InfiniBand port is hardware but not Ethernet',
    { name: 'ib0', linkType: 'infiniband', hasDevice: true },
    'other',
  ],
  ['tun (VPN)', { name: 'tun0', linkType: 'none', linkKind: 'tun', hasDevice: false }, 'virtual'],
  [
    'tap by info_kind tun',
    { name: 'tap0', linkType: 'ether', linkKind: 'tun', hasDevice: false },
    'virtual',
  ],
  [
    'WireGuard',
    { name: 'wg0', linkType: 'none', linkKind: 'wireguard', hasDevice: false },
    'virtual',
  ],
  [
    'veth',
    { name: 'veth1a2b3c', linkType: 'ether', linkKind: 'veth', hasDevice: false },
    'virtual',
  ],
  [
    'Docker bridge',
    { name: 'docker0', linkType: 'ether', linkKind: 'bridge', devType: 'bridge', hasDevice: false },
    'virtual',
  ],
  [
    'bridge by DEVTYPE without linkinfo',
    { name: 'br0', linkType: 'ether', devType: 'bridge', hasDevice: false },
    'virtual',
  ],
  ['tun by name when ip gave no linkinfo', { name: 'tun3', hasDevice: false }, 'virtual'],
  [
    'a sysfs-less software device with an unknown name',
    { name: 'foo0', linkType: 'ether', hasDevice: false },
    'other',
  ],
  [
    'Linux wlan name without /wireless is not trusted',
    { name: 'wlan0', linkType: 'ether', hasDevice: false },
    'other',
  ],
  // No sysfs (polling fallback, other systems): the name is all there is.
  ['Linux wl* name without sysfs', { name: 'wlan0' }, 'wifi'],
  ['Linux en* name without sysfs', { name: 'enp0s31f6' }, 'ethernet'],
  ['Windows Wi-Fi', { name: 'Wi-Fi 2' }, 'wifi'],
  ['Windows Ethernet', { name: 'Ethernet' }, 'ethernet'],
  ['Windows Cellular', { name: 'Cellular' }, 'cellular'],
  ['macOS cellular (iOS hotspot data)', { name: 'pdp_ip0' }, 'cellular'],
  ['macOS utun', { name: 'utun4' }, 'virtual'],
  ['macOS en0 could be either', { name: 'en0' }, 'other'],
];

describe('classifyInterface', () => {
  it.each(CASES)('%s', (_label, facts, kind) => {
    expect(classifyInterface(facts)).toBe(kind);
  });
});

describe('readSysfsFacts', () => {
  const root = mkdtempSync(join(tmpdir(), 'braid-sysfs-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A fake /sys/class/net/<name> in the layout the kernel uses. */
  function fakeInterface(
    name: string,
    opts: {
      ifindex: number;
      driver?: string;
      wireless?: 'wireless' | 'phy80211';
      devtype?: string;
    },
  ): void {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'ifindex'), `${opts.ifindex}\n`);
    writeFileSync(
      join(dir, 'uevent'),
      `${opts.devtype === undefined ? '' : `DEVTYPE=${opts.devtype}\n`}INTERFACE=${name}\nIFINDEX=${opts.ifindex}\n`,
    );
    if (opts.driver !== undefined) {
      const drivers = join(root, '_bus', 'drivers', opts.driver);
      mkdirSync(drivers, { recursive: true });
      const device = join(root, '_bus', 'devices', name);
      mkdirSync(device, { recursive: true });
      symlinkSync(drivers, join(device, 'driver'));
      symlinkSync(device, join(dir, 'device'));
    }
    if (opts.wireless === 'wireless') mkdirSync(join(dir, 'wireless'));
    if (opts.wireless === 'phy80211') symlinkSync(root, join(dir, 'phy80211'));
  }

  fakeInterface('wlp2s0', { ifindex: 3, driver: 'iwlwifi', wireless: 'wireless', devtype: 'wlan' });
  fakeInterface('wlx0011', { ifindex: 4, driver: 'rt2800usb', wireless: 'phy80211' });
  fakeInterface('usb0', { ifindex: 5, driver: 'rndis_host' });
  fakeInterface('enp3s0', { ifindex: 6, driver: 'r8169' });
  fakeInterface('veth9', { ifindex: 7 });

  it('reads wireless, driver, DEVTYPE and ifindex the way the kernel lays them out', async () => {
    expect(await readSysfsFacts('wlp2s0', root)).toEqual({
      wireless: true,
      hasDevice: true,
      driver: 'iwlwifi',
      devType: 'wlan',
      ifindex: 3,
    });
    expect(await readSysfsFacts('veth9', root)).toEqual({
      wireless: false,
      hasDevice: false,
      ifindex: 7,
    });
  });

  it('classifies fake sysfs trees: Wi-Fi by phy80211, RNDIS tether as cellular, PCI NIC as Ethernet, a device-less veth as virtual', async () => {
    const kind = async (name: string): Promise<UplinkKind> =>
      classifyInterface({ name, linkType: 'ether', ...(await readSysfsFacts(name, root)) });
    expect(await kind('wlp2s0')).toBe('wifi');
    expect(await kind('wlx0011')).toBe('wifi');
    expect(await kind('usb0')).toBe('cellular');
    expect(await kind('enp3s0')).toBe('ethernet');
    expect(await kind('veth9')).toBe('virtual');
  });

  it('returns no facts for an interface that vanished and refuses path tricks', async () => {
    expect(await readSysfsFacts('gone0', root)).toEqual({ wireless: false, hasDevice: false });
    expect(await readSysfsFacts('../_bus', root)).toEqual({});
  });

  it.skipIf(!existsSync('/sys/class/net/lo'))(
    'reads the real loopback: no device behind it',
    async () => {
      const facts = await readSysfsFacts('lo');
      expect(facts.hasDevice).toBe(false);
      expect(facts.ifindex).toBe(1);
      expect(classifyInterface({ name: 'lo', linkType: 'loopback', ...facts })).toBe('loopback');
    },
  );
});
