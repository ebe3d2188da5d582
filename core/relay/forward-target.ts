/**
 * Session targets that ask the relay to forward (the OPEN frame's `target`):
 *   "tcp:<host>:<port>"  connect to host (a name is resolved at the relay), then relay bytes
 *   "udp"                relay SOCKS5-framed datagrams (RFC 1928 §7 header) both ways
 * An IPv6 host is written in brackets: "tcp:[2001:db8::1]:443".
 */
import net from 'node:net';

export type ForwardTarget = { kind: 'tcp'; host: string; port: number } | { kind: 'udp' };

export function formatTcpTarget(host: string, port: number): string {
  return `tcp:${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** Undefined when `target` is not a forwarding target (or a malformed one). */
export function parseForwardTarget(target: string): ForwardTarget | undefined {
  if (target === 'udp') return { kind: 'udp' };
  const m = /^tcp:(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(target);
  if (m === null) return undefined;
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && !net.isIPv6(host)) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { kind: 'tcp', host, port };
}
