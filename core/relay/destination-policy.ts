/**
 * Which destinations a relay forwards to. By default none on the relay's own side of
 * the world: loopback, private (RFC 1918), carrier-grade NAT (RFC 6598), link-local,
 * unique-local IPv6 (RFC 4193), multicast, unspecified and the relay's own interface
 * addresses — otherwise any client could reach the services the relay's host keeps
 * for itself (SSH on 127.0.0.1, the home router's admin page). The check runs on the
 * addresses a name resolved to, never on the name, so a name that resolves to
 * 127.0.0.1 is refused like the literal (DNS rebinding), and the connection then goes
 * to exactly the address that was checked.
 */
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { BraidError } from '../util/errors.js';

/** Ranges refused unless allowed (IANA special-purpose registries, RFC 6890). */
const PRIVATE_V4: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // RFC 6598 carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
];
const PRIVATE_V6: Array<[string, number]> = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // RFC 4193 unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
];

export interface DestinationPolicyOptions {
  /** Forward to private, loopback and link-local destinations too (a trusted LAN). */
  allowPrivate?: boolean;
  /** CIDRs allowed even though private ("127.0.0.0/8", "fd00::/8"). */
  allow?: string[];
  /** The relay's own addresses (refused unless allowPrivate); default: its interfaces. */
  ownAddresses?: string[];
}

export type PolicyVerdict = { ok: true } | { ok: false; reason: string };

export class DestinationPolicy {
  private readonly denied = new net.BlockList();
  private readonly allowed = new net.BlockList();
  private readonly allowPrivate: boolean;

  constructor(options: DestinationPolicyOptions = {}) {
    this.allowPrivate = options.allowPrivate ?? false;
    for (const [a, p] of PRIVATE_V4) this.denied.addSubnet(a, p, 'ipv4');
    for (const [a, p] of PRIVATE_V6) this.denied.addSubnet(a, p, 'ipv6');
    const own = options.ownAddresses ?? ownInterfaceAddresses();
    for (const a of own) {
      const plain = unmapped(a);
      if (net.isIP(plain) !== 0) this.denied.addAddress(plain, net.isIPv6(plain) ? 'ipv6' : 'ipv4');
    }
    for (const cidr of options.allow ?? []) {
      const [address, bits] = parseCidr(cidr);
      this.allowed.addSubnet(address, bits, net.isIPv6(address) ? 'ipv6' : 'ipv4');
    }
  }

  /** Whether the relay may connect or send to this literal address. */
  check(address: string): PolicyVerdict {
    const plain = unmapped(address);
    const family = net.isIPv6(plain) ? 'ipv6' : net.isIPv4(plain) ? 'ipv4' : undefined;
    if (family === undefined) return { ok: false, reason: `not an IP address: ${address}` };
    if (this.allowPrivate || this.allowed.check(plain, family)) return { ok: true };
    if (this.denied.check(plain, family))
      return {
        ok: false,
        reason: `${address} is loopback, private, link-local or the relay's own address (relay not started with --allow-private)`,
      };
    return { ok: true };
  }
}

/** An IPv4-mapped IPv6 address ("::ffff:127.0.0.1") is checked as the IPv4 address it is. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m === null ? address : m[1]!;
}

function parseCidr(text: string): [string, number] {
  const [address, bitsText] = text.split('/');
  const family = net.isIP(address ?? '');
  const bits = bitsText === undefined ? (family === 6 ? 128 : 32) : Number(bitsText);
  if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32))
    throw new BraidError('BRAID_ERR_CONFIG', 'not a CIDR (address/bits)', { value: text });
  return [address!, bits];
}

function ownInterfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((i) => i.address);
}

export interface ResolvedDestination {
  /** Addresses the name resolved to that the policy allows, in resolver order. */
  allowed: string[];
  /** Why nothing is allowed, when `allowed` is empty. */
  refusal?: string;
}

/**
 * Resolves `host` at the relay (so lookups do not leak on one of the client's
 * uplinks) and keeps the addresses the policy allows. A resolver failure is a
 * BraidError with the resolver's code in the cause.
 */
export async function resolveDestination(
  host: string,
  policy: DestinationPolicy,
): Promise<ResolvedDestination> {
  const literal = net.isIP(host) !== 0;
  const addresses = literal
    ? [host]
    : (await lookup(host, { all: true, verbatim: true })).map((r) => r.address);
  const allowed: string[] = [];
  let refusal: string | undefined;
  for (const a of addresses) {
    const verdict = policy.check(a);
    if (verdict.ok) allowed.push(a);
    else refusal ??= literal ? verdict.reason : `${host} resolves to ${verdict.reason}`;
  }
  return allowed.length > 0 ? { allowed } : { allowed, refusal: refusal ?? `${host}: no address` };
}
