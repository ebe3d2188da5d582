import { readFile, readlink, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { UplinkKind } from './uplink.js';

/**
 * What is known about an interface, from `ip -details -json` and /sys/class/net.
 * Every field but the name is optional: the polling fallback knows only the name and
 * whether the OS calls it internal.
 */
export interface InterfaceFacts {
  name: string;
  /** `link_type` from ip: 'ether', 'loopback', 'none' (raw IP: tun, some modems), … */
  linkType?: string;
  /** `linkinfo.info_kind` from `ip -details`: 'veth', 'tun', 'bridge', 'wireguard', … */
  linkKind?: string;
  /** The LOOPBACK flag, or Node's `internal`. */
  loopback?: boolean;
  /** /sys/class/net/<name>/wireless or /phy80211 exists. */
  wireless?: boolean;
  /** DEVTYPE= from /sys/class/net/<name>/uevent: 'wlan', 'wwan', 'bridge', 'vlan', … */
  devType?: string;
  /** Name of the driver behind /sys/class/net/<name>/device/driver. */
  driver?: string;
  /** /sys/class/net/<name>/device exists: backed by hardware (PCI, USB, virtio, …). */
  hasDevice?: boolean;
}

/**
 * USB network drivers that phones and cellular modems use for tethering: RNDIS and
 * CDC ECM/NCM/MBIM (Android, most USB modems), ipheth (iPhone), QMI and the
 * Qualcomm/Sierra/Huawei modem drivers.
 */
const CELLULAR_DRIVERS = new Set([
  'rndis_host',
  'cdc_ether',
  'cdc_ncm',
  'cdc_mbim',
  'ipheth',
  'qmi_wwan',
  'huawei_cdc_ncm',
  'sierra_net',
  'cdc_subset',
  'mhi_net',
  'mhi_wwan_mbim',
]);

/** `info_kind` values of interfaces that exist only in software. */
const VIRTUAL_LINK_KINDS = new Set([
  'tun',
  'veth',
  'bridge',
  'wireguard',
  'dummy',
  'vxlan',
  'geneve',
  'gre',
  'gretap',
  'ip6gre',
  'ip6gretap',
  'ipip',
  'sit',
  'ip6tnl',
  'vti',
  'vti6',
  'xfrm',
  'ifb',
  'nlmon',
  'vrf',
  'wwan_virt',
]);

/** Name prefixes of software interfaces, for when `ip -details` is not available. */
const VIRTUAL_NAME =
  /^(tun|tap|utun|wg|veth|br-|bridge|docker|virbr|lxcbr|lxdbr|vboxnet|vmnet|zt|tailscale|ipsec|gif|stf|awdl|llw|anpi|ifb)/i;

/** Linux predictable names: wl = WLAN, ww = WWAN, en = Ethernet (enp…, eno…, ens…, enx…). */
const LINUX_WIFI_NAME = /^wl/;
const CELLULAR_NAME = /^(wwan|ww[a-z]|usb|rmnet|ccmni|pdp_ip)/;
const LINUX_ETHERNET_NAME = /^(eth\d|en[a-z])/;
/** Windows friendly names. */
const WINDOWS_WIFI_NAME = /^(wi-?fi|wlan|wireless)/i;
const WINDOWS_ETHERNET_NAME = /^ethernet/i;
const WINDOWS_CELLULAR_NAME = /^(cellular|mobile broadband)/i;

/** Kind of an interface from its facts (pure; the order of tests is the priority). */
export function classifyInterface(facts: InterfaceFacts): UplinkKind {
  const name = facts.name;
  if (facts.loopback === true || facts.linkType === 'loopback' || name === 'lo') return 'loopback';
  if (facts.wireless === true || facts.devType === 'wlan') return 'wifi';
  if (facts.devType === 'wwan') return 'cellular';
  if (facts.driver !== undefined && CELLULAR_DRIVERS.has(facts.driver)) return 'cellular';
  if (facts.linkKind !== undefined && VIRTUAL_LINK_KINDS.has(facts.linkKind)) return 'virtual';
  if (facts.devType === 'bridge') return 'virtual';
  if (CELLULAR_NAME.test(name)) return 'cellular';
  if (facts.hasDevice === true) {
    // A device without an Ethernet link layer (InfiniBand, CAN, raw-IP modems whose
    // driver we do not know) is real hardware but not Ethernet.
    return facts.linkType === undefined || facts.linkType === 'ether' ? 'ethernet' : 'other';
  }
  if (VIRTUAL_NAME.test(name)) return 'virtual';
  // Names decide only when sysfs was not read (the polling fallback, other OSes):
  // on Linux a wlan0 without /wireless is not a Wi-Fi card.
  if (facts.hasDevice === undefined) {
    if (LINUX_WIFI_NAME.test(name) || WINDOWS_WIFI_NAME.test(name)) return 'wifi';
    if (WINDOWS_CELLULAR_NAME.test(name)) return 'cellular';
    if (LINUX_ETHERNET_NAME.test(name) || WINDOWS_ETHERNET_NAME.test(name)) return 'ethernet';
  }
  // macOS en0/en1 may be Wi-Fi or Ethernet; its name does not say which.
  return 'other';
}

export type SysfsFacts = Pick<InterfaceFacts, 'wireless' | 'devType' | 'driver' | 'hasDevice'> & {
  /**
   * /sys/class/net/<name>/ifindex. /sys shows the network namespace of whoever mounted
   * it (`ip netns exec` remounts it, `nsenter --net` does not), so a caller checks this
   * against the index netlink gave before trusting the other facts.
   */
  ifindex?: number;
};

/**
 * Reads the kind-relevant files of /sys/class/net/<name>. Missing files are facts
 * (ENOENT: no such attribute); an interface deleted meanwhile yields what was read.
 */
export async function readSysfsFacts(name: string, root = '/sys/class/net'): Promise<SysfsFacts> {
  if (name.includes('/') || name === '.' || name === '..') return {};
  const dir = join(root, name);
  const [wireless, phy, hasDevice, driverLink, uevent, ifindexText] = await Promise.all([
    exists(join(dir, 'wireless')),
    exists(join(dir, 'phy80211')),
    exists(join(dir, 'device')),
    readOptional(() => readlink(join(dir, 'device', 'driver'))),
    readOptional(() => readFile(join(dir, 'uevent'), 'utf8')),
    readOptional(() => readFile(join(dir, 'ifindex'), 'utf8')),
  ]);
  const ifindex = ifindexText === undefined ? NaN : Number(ifindexText.trim());
  const devType = uevent === undefined ? undefined : /^DEVTYPE=(.*)$/m.exec(uevent)?.[1];
  return {
    wireless: wireless || phy,
    hasDevice,
    ...(driverLink === undefined ? {} : { driver: basename(driverLink) }),
    ...(devType === undefined ? {} : { devType }),
    ...(Number.isInteger(ifindex) ? { ifindex } : {}),
  };
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EINVAL';
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

async function readOptional(read: () => Promise<string>): Promise<string | undefined> {
  try {
    return await read();
  } catch (err) {
    // EINVAL from readlink: the path exists but is not a link.
    if (isMissing(err)) return undefined;
    throw err;
  }
}
