/**
 * Tools of the attacker in test/security: an on-path position on one path (sees,
 * changes, drops, replays and injects packets in both directions, from the path's own
 * addresses), raw probes from other addresses that count bytes in and out, and a
 * legitimate transfer whose SHA-256 is checked at both ends while the attack runs.
 * Sockets, TLS, AEAD and the session layer stay real; only the link is hostile.
 */
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type { BraidClient } from '../../../core/api/client.js';
import type { Subflow } from '../../../core/transport/subflow.js';

/** What the attacker does with one packet: undefined passes it, an array replaces it (empty drops it). */
export type PacketHook = (packet: Buffer) => Buffer[] | undefined;

export interface OnPathTap {
  readonly subflow: Subflow;
  /** The first `keep` packets the client sent on this path, copied as they left. */
  readonly sent: Buffer[];
  /** The first `keep` packets the relay sent on this path. */
  readonly received: Buffer[];
  /** Packets seen each way (all of them, not only those kept). */
  counts: { sent: number; received: number };
  /** Client → relay. */
  outbound: PacketHook | undefined;
  /** Relay → client. */
  inbound: PacketHook | undefined;
  /** Sends bytes to the relay from the path's own address and port (an on-path injection). */
  inject(packet: Buffer): void;
  /** Delivers bytes to the client as if the relay had sent them on this path. */
  injectInbound(packet: Buffer): void;
}

/** Wraps a client subflow so that a test can act as an attacker sitting on that path. */
export function tapSubflow(inner: Subflow, keep = 64): { wrapped: Subflow; tap: OnPathTap } {
  let onPacket: (packet: Buffer) => void = () => undefined;
  const deliver = (p: Buffer): void => onPacket(p);
  const tap: OnPathTap = {
    subflow: inner,
    sent: [],
    received: [],
    counts: { sent: 0, received: 0 },
    outbound: undefined,
    inbound: undefined,
    inject: (packet) => void inner.send(Buffer.from(packet)),
    injectInbound: (packet) => deliver(Buffer.from(packet)),
  };
  inner.onPacket = (packet) => {
    tap.counts.received++;
    if (tap.received.length < keep) tap.received.push(Buffer.from(packet));
    const out = tap.inbound?.(packet);
    if (out === undefined) deliver(packet);
    else for (const p of out) deliver(p);
  };
  const wrapped: Subflow = {
    get kind() {
      return inner.kind;
    },
    get localAddress() {
      return inner.localAddress;
    },
    get localPort() {
      return inner.localPort;
    },
    get remoteAddress() {
      return inner.remoteAddress;
    },
    get remotePort() {
      return inner.remotePort;
    },
    get maxPacketSize() {
      return inner.maxPacketSize;
    },
    get queuedBytes() {
      return inner.queuedBytes;
    },
    get closed() {
      return inner.closed;
    },
    send(packet: Uint8Array): boolean {
      const p = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
      tap.counts.sent++;
      if (tap.sent.length < keep) tap.sent.push(Buffer.from(p));
      const out = tap.outbound?.(p);
      if (out === undefined) return inner.send(p);
      let ok = true;
      for (const q of out) ok = inner.send(q) && ok;
      return ok;
    },
    sendParts(parts: readonly Buffer[]): boolean {
      // The attacker works on whole packets.
      return wrapped.send(Buffer.concat(parts));
    },
    cork(): void {
      inner.cork();
    },
    uncork(): void {
      inner.uncork();
    },
    get onPacket() {
      return onPacket;
    },
    set onPacket(fn: (packet: Buffer) => void) {
      onPacket = fn;
    },
    get onDrain() {
      return inner.onDrain;
    },
    set onDrain(fn: () => void) {
      inner.onDrain = fn;
    },
    get onClose() {
      return inner.onClose;
    },
    set onClose(fn: Subflow['onClose']) {
      inner.onClose = fn;
    },
    close(): void {
      inner.close();
    },
  };
  return { wrapped, tap };
}

export interface EchoResult {
  bytes: number;
  sentSha256: string;
  receivedSha256: string;
  receivedBytes: number;
}

/**
 * The legitimate traffic that must survive every attack: `bytes` of random data to the
 * relay's "echo" target and back on one session, hashed on the way out and on the way
 * back. Resolves when the echo ended; rejects if the session fails.
 */
export async function echoTransfer(client: BraidClient, bytes: number): Promise<EchoResult> {
  const stream = client.openStream({ target: 'echo' });
  const out = createHash('sha256');
  const back = createHash('sha256');
  let receivedBytes = 0;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => {
      receivedBytes += c.length;
      back.update(c);
    });
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  const block = 64 * 1024;
  for (let sent = 0; sent < bytes; sent += block) {
    const chunk = randomBytes(Math.min(block, bytes - sent));
    out.update(chunk);
    if (!stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const ok = (): void => {
          stream.off('error', fail);
          resolve();
        };
        const fail = (err: Error): void => {
          stream.off('drain', ok);
          reject(err);
        };
        stream.once('drain', ok);
        stream.once('error', fail);
      });
    }
  }
  stream.end();
  await done;
  return {
    bytes,
    sentSha256: out.digest('hex'),
    receivedSha256: back.digest('hex'),
    receivedBytes,
  };
}

/** Byte counts of one probe: what the attacker sent and what came back to it. */
export interface ProbeBytes {
  sent: number;
  received: number;
}

/** Sends datagrams from `from` and counts what comes back within `waitMs`. */
export function probeUdp(
  port: number,
  payloads: Buffer[],
  from: string,
  to = '127.0.0.1',
  waitMs = 400,
): Promise<ProbeBytes & { replies: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(from) ? 'udp6' : 'udp4');
    const replies: Buffer[] = [];
    let sent = 0;
    socket.on('message', (msg) => replies.push(msg));
    socket.on('error', reject);
    socket.bind(0, from, () => {
      for (const p of payloads) {
        sent += p.length;
        socket.send(p, port, to);
      }
      setTimeout(() => {
        socket.close();
        resolve({ sent, received: replies.reduce((n, r) => n + r.length, 0), replies });
      }, waitMs);
    });
  });
}

/**
 * Opens a TCP connection from `from`, writes `payload` (or nothing), and counts the
 * bytes that come back until the peer closes or `waitMs` passes.
 */
export function probeTcp(
  port: number,
  payload: Buffer | undefined,
  from: string,
  waitMs = 1500,
): Promise<ProbeBytes & { closedBy: 'peer' | 'timeout' }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
    let received = 0;
    socket.on('data', (c: Buffer) => (received += c.length));
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      if (payload !== undefined) socket.write(payload);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ sent: payload?.length ?? 0, received, closedBy: 'timeout' });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ sent: payload?.length ?? 0, received, closedBy: 'peer' });
    });
  });
}

/** Polls `predicate` every 10 ms. */
export function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (predicate()) resolve();
      else if (Date.now() - start > timeoutMs) reject(new Error('condition not met in time'));
      else setTimeout(tick, 10);
    };
    tick();
  });
}
