/** SOCKS5 messages the server sends (RFC 1928 §3, §6, §7; RFC 1929 §2). Pure. */
import net from 'node:net';
import { BraidError } from '../util/errors.js';
import {
  ATYP_DOMAIN,
  ATYP_IPV4,
  ATYP_IPV6,
  AUTH_VERSION,
  SOCKS_VERSION,
  type ReplyCode,
} from './socks5-parser.js';

export interface HostPort {
  host: string;
  port: number;
}

/** RFC 1928 §3: VER METHOD. */
export function encodeMethodSelection(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, method]);
}

/** RFC 1929 §2: VER STATUS (0 = success). */
export function encodeAuthStatus(ok: boolean): Buffer {
  return Buffer.from([AUTH_VERSION, ok ? 0 : 1]);
}

/** RFC 1928 §6: VER REP RSV ATYP BND.ADDR BND.PORT. A failure reports 0.0.0.0:0. */
export function encodeReply(
  reply: ReplyCode,
  bound: HostPort = { host: '0.0.0.0', port: 0 },
): Buffer {
  const address = encodeAddress(bound);
  const out = Buffer.allocUnsafe(3 + address.length);
  out[0] = SOCKS_VERSION;
  out[1] = reply;
  out[2] = 0;
  address.copy(out, 3);
  return out;
}

/** ATYP ADDR PORT for an IPv4 or IPv6 literal or a domain name. */
export function encodeAddress({ host, port }: HostPort): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new BraidError('BRAID_ERR_USAGE', 'port out of range', { value: port });
  if (net.isIPv4(host)) {
    const out = Buffer.allocUnsafe(7);
    out[0] = ATYP_IPV4;
    host.split('.').forEach((part, i) => (out[1 + i] = Number(part)));
    out.writeUInt16BE(port, 5);
    return out;
  }
  if (net.isIPv6(host)) {
    const out = Buffer.allocUnsafe(19);
    out[0] = ATYP_IPV6;
    ipv6Bytes(host).copy(out, 1);
    out.writeUInt16BE(port, 17);
    return out;
  }
  const name = Buffer.from(host, 'latin1');
  if (name.length === 0 || name.length > 255)
    throw new BraidError('BRAID_ERR_USAGE', 'domain name must be 1..255 bytes', { value: host });
  const out = Buffer.allocUnsafe(4 + name.length);
  out[0] = ATYP_DOMAIN;
  out[1] = name.length;
  name.copy(out, 2);
  out.writeUInt16BE(port, 2 + name.length);
  return out;
}

/** RFC 1928 §7: RSV(2) FRAG(0) ATYP DST.ADDR DST.PORT DATA, as one buffer. */
export function encodeUdpDatagram(from: HostPort, data: Uint8Array): Buffer {
  const address = encodeAddress(from);
  const out = Buffer.allocUnsafe(3 + address.length + data.length);
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  address.copy(out, 3);
  out.set(data, 3 + address.length);
  return out;
}

/** The 16 bytes of an IPv6 literal (IPv4-embedded forms included). */
export function ipv6Bytes(host: string): Buffer {
  const zone = host.indexOf('%');
  const text = zone >= 0 ? host.slice(0, zone) : host;
  let head = text;
  const tailWords: number[] = [];
  // An IPv4 tail ("::ffff:1.2.3.4") is two 16-bit groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (net.isIPv4(tail)) {
    const p = tail.split('.').map(Number);
    tailWords.push((p[0]! << 8) | p[1]!, (p[2]! << 8) | p[3]!);
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const words = (s: string | undefined): number[] =>
    s === undefined || s === '' ? [] : s.split(':').map((g) => parseInt(g, 16));
  const l = words(left);
  const r = [...words(right), ...tailWords];
  const fill = right === undefined ? [] : new Array<number>(8 - l.length - r.length).fill(0);
  const all = right === undefined ? [...l, ...tailWords] : [...l, ...fill, ...r];
  const out = Buffer.alloc(16);
  all.slice(0, 8).forEach((w, i) => out.writeUInt16BE(w & 0xffff, i * 2));
  return out;
}
