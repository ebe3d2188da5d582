/**
 * What the interface watcher reports about one network interface (DESIGN §5).
 * Values are immutable: a change produces a new object, so a listener may keep the
 * `previous` of a 'changed' event without copying it.
 */
export type UplinkKind = 'wifi' | 'ethernet' | 'cellular' | 'virtual' | 'loopback' | 'other';

export interface UplinkAddress {
  readonly address: string;
  readonly family: 4 | 6;
  readonly prefixLength: number;
}

export interface Uplink {
  readonly name: string;
  /** Kernel interface index; 0 where the OS does not tell (the polling fallback). */
  readonly index: number;
  readonly kind: UplinkKind;
  /**
   * Usable addresses, IPv6 link-local included; addresses still in duplicate address
   * detection (tentative) or that failed it are left out, as they cannot be bound to.
   */
  readonly addresses: readonly UplinkAddress[];
  /** Administratively up and with carrier (flags UP and LOWER_UP). */
  readonly up: boolean;
  /** Next hop of this interface's default route in any routing table, IPv4 first. */
  readonly gateway?: string;
  /**
   * true: the gateway answered (ICMP echo or a confirmed neighbour entry); false: it
   * did not (or the interface is down); undefined: unknown (not probed yet, no gateway,
   * no way to probe). Never guessed.
   */
  readonly gatewayReachable?: boolean;
  /** Loopback, container bridges and their ports by default, plus the user's list. */
  readonly ignored: boolean;
}

/** Identity of an interface: a deleted and re-created device is a new interface. */
export function uplinkKey(u: Pick<Uplink, 'index' | 'name'>): string {
  return `${u.index}/${u.name}`;
}

function compareAddresses(a: UplinkAddress, b: UplinkAddress): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  return a.prefixLength - b.prefixLength;
}

/** Addresses in one canonical order, so that equal sets compare equal. */
export function sortAddresses(addresses: readonly UplinkAddress[]): UplinkAddress[] {
  return [...addresses].sort(compareAddresses);
}

/** Deeply frozen copy with addresses in canonical order. */
export function freezeUplink(u: Uplink): Uplink {
  const addresses = Object.freeze(sortAddresses(u.addresses).map((a) => Object.freeze({ ...a })));
  const out: Uplink = {
    name: u.name,
    index: u.index,
    kind: u.kind,
    addresses,
    up: u.up,
    ignored: u.ignored,
    ...(u.gateway === undefined ? {} : { gateway: u.gateway }),
    ...(u.gatewayReachable === undefined ? {} : { gatewayReachable: u.gatewayReachable }),
  };
  return Object.freeze(out);
}

export function sameUplink(a: Uplink, b: Uplink): boolean {
  if (
    a.name !== b.name ||
    a.index !== b.index ||
    a.kind !== b.kind ||
    a.up !== b.up ||
    a.gateway !== b.gateway ||
    a.gatewayReachable !== b.gatewayReachable ||
    a.ignored !== b.ignored ||
    a.addresses.length !== b.addresses.length
  ) {
    return false;
  }
  const x = sortAddresses(a.addresses);
  const y = sortAddresses(b.addresses);
  return x.every((addr, i) => compareAddresses(addr, y[i]!) === 0);
}
