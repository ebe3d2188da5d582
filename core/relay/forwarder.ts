/**
 * The relay's way out to the Internet: a forwarding session ("tcp:host:port" or
 * "udp", see forward-target.ts) becomes a TCP connection or a UDP socket at the
 * relay. Names are resolved here and the resolved addresses checked against the
 * destination policy; the outcome goes back first as a ForwardReply.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import { BraidError } from '../util/errors.js';
import { errorFields, type LogFields, type Logger } from '../util/log.js';
import { parseUdpDatagram, Socks5Error } from '../proxy/socks5-parser.js';
import { encodeUdpDatagram } from '../proxy/socks5-encode.js';
import { StreamDatagramChannel, type DatagramChannel } from './datagram-channel.js';
import { DestinationPolicy, resolveDestination } from './destination-policy.js';
import { encodeForwardReply, ForwardStatus, type ForwardStatusCode } from './forward-reply.js';
import type { TokenBucket } from './token-bucket.js';

export interface ForwardContext {
  policy: DestinationPolicy;
  connectTimeoutMs: number;
  /** The client's shared byte budget (both directions), if it is limited. */
  bucket: TokenBucket | undefined;
  log: Logger;
}

/** Counters of one forwarding session, logged when it ends. */
export interface ForwardStats {
  up: number;
  down: number;
  /** UDP only: datagrams dropped (FRAG != 0, malformed, refused destination, over rate). */
  dropped: number;
}

/** Maps a connect or resolver error to the SOCKS reply code RFC 1928 §6 has for it. */
export function statusForError(err: unknown): ForwardStatusCode {
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case 'ECONNREFUSED':
      return ForwardStatus.refused;
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return ForwardStatus.networkUnreachable;
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
    case 'ENOTFOUND':
    case 'ENODATA':
    case 'EAI_NONAME':
    case 'EAI_AGAIN':
      return ForwardStatus.hostUnreachable;
    case 'ETIMEDOUT':
      return ForwardStatus.timeout;
    default:
      return ForwardStatus.generalFailure;
  }
}

function connectOnce(address: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        Object.assign(new Error(`connect to ${address}:${port} timed out`), { code: 'ETIMEDOUT' }),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Copies `from` into `to`, ends `to` when `from` ends (TCP half-close travels), and
 * counts bytes against the client's bucket: over budget, reading pauses until the
 * bucket refills, which backs the sender off through flow control.
 */
export function throttledPipe(
  from: Readable,
  to: Writable,
  bucket: TokenBucket | undefined,
  count: (n: number) => void,
): void {
  let timer: NodeJS.Timeout | undefined;
  let waitingDrain = false;
  const maybeResume = (): void => {
    if (timer === undefined && !waitingDrain) from.resume();
  };
  from.on('data', (chunk: Buffer) => {
    count(chunk.length);
    const ok = to.write(chunk);
    const wait = bucket?.take(chunk.length) ?? 0;
    if (ok && wait === 0) return;
    from.pause();
    if (!ok) {
      waitingDrain = true;
      to.once('drain', () => {
        waitingDrain = false;
        maybeResume();
      });
    }
    if (wait > 0 && timer === undefined) {
      timer = setTimeout(() => {
        timer = undefined;
        maybeResume();
      }, Math.ceil(wait));
    }
  });
  from.once('end', () => to.end());
  from.once('close', () => clearTimeout(timer));
  // The stream may have been paused explicitly (a reply read off its head); start it.
  from.resume();
}

/** TCP: resolve, check, connect, reply, then relay bytes both ways. */
export async function forwardTcp(
  stream: Duplex,
  host: string,
  port: number,
  ctx: ForwardContext,
  stats: ForwardStats,
): Promise<void> {
  const refuse = (status: ForwardStatusCode, reason: string): void => {
    ctx.log.info('forward refused', { target: `${host}:${port}`, status, reason });
    stream.resume(); // drop whatever early data the client sent
    stream.end(encodeForwardReply({ status, text: reason }));
  };
  let candidates: string[];
  try {
    const resolved = await resolveDestination(host, ctx.policy);
    if (resolved.allowed.length === 0) {
      refuse(ForwardStatus.notAllowed, resolved.refusal ?? 'not allowed');
      return;
    }
    candidates = resolved.allowed;
  } catch (err) {
    refuse(statusForError(err), `cannot resolve ${host}: ${(err as Error).message}`);
    return;
  }
  if (stream.destroyed) return;
  let socket: net.Socket | undefined;
  let lastError: unknown;
  // Addresses in resolver order, one after the other (a later one may answer when the first is down).
  for (const address of candidates.slice(0, 4)) {
    try {
      socket = await connectOnce(address, port, ctx.connectTimeoutMs);
      break;
    } catch (err) {
      lastError = err;
    }
  }
  if (socket === undefined) {
    refuse(
      statusForError(lastError),
      `connect to ${host}:${port} failed: ${(lastError as Error).message}`,
    );
    return;
  }
  if (stream.destroyed) {
    socket.destroy();
    return;
  }
  const out = socket;
  const bound = `${out.localAddress ?? ''}:${out.localPort ?? 0}`;
  ctx.log.info('forwarding', { target: `${host}:${port}`, address: out.remoteAddress, bound });
  stream.write(encodeForwardReply({ status: ForwardStatus.ok, text: bound }));
  out.on('error', (err) => {
    ctx.log.info('destination connection failed', {
      target: `${host}:${port}`,
      ...errorFields(err),
    });
    stream.destroy(
      new BraidError('BRAID_ERR_RELAY_REFUSED', `destination ${host}:${port} failed`, {
        cause: err,
      }),
    );
  });
  stream.on('error', () => out.destroy());
  stream.on('close', () => {
    // The session is gone (reset or done): the destination connection goes with it.
    if (!out.destroyed && !(out.readableEnded && out.writableFinished)) out.destroy();
  });
  out.on('close', () => {
    if (!stream.destroyed && !stream.writableFinished && !stream.writableEnded) stream.end();
  });
  throttledPipe(stream, out, ctx.bucket, (n) => (stats.up += n));
  throttledPipe(out, stream, ctx.bucket, (n) => (stats.down += n));
}

/**
 * UDP: one socket per family at the relay; datagrams carry the RFC 1928 §7 header
 * both ways. A stream-carried association first gets a ForwardReply; a message
 * session none (the SOCKS reply does not wait for UDP, and an unreliable first
 * message could be lost): a refusal resets it instead.
 */
export function forwardUdpStream(stream: Duplex, ctx: ForwardContext, stats: ForwardStats): void {
  stream.write(encodeForwardReply({ status: ForwardStatus.ok, text: 'udp' }));
  forwardUdp(new StreamDatagramChannel(stream, ctx.log), ctx, stats);
}

export function forwardUdp(
  channel: DatagramChannel,
  ctx: ForwardContext,
  stats: ForwardStats,
): void {
  const sockets = new Map<4 | 6, dgram.Socket>();
  const nameCache = new Map<string, { address: string; until: number }>();
  let refusalsLogged = 0;
  const drop = (why: string, fields: LogFields): void => {
    stats.dropped++;
    // One line per kind of problem is enough to diagnose; a flood must not flood the log.
    if (refusalsLogged++ < 5) ctx.log.info(`udp datagram dropped: ${why}`, fields);
  };
  const socketFor = (family: 4 | 6): dgram.Socket => {
    let s = sockets.get(family);
    if (s !== undefined) return s;
    s = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    s.on('message', (msg, rinfo) => {
      stats.down += msg.length;
      if ((ctx.bucket?.take(msg.length) ?? 0) > 0) {
        drop('client over its rate', { bytes: msg.length });
        return;
      }
      const datagram = encodeUdpDatagram({ host: rinfo.address, port: rinfo.port }, msg);
      if (datagram.length > channel.maxDatagram)
        drop('reply larger than the association carries', {
          bytes: datagram.length,
          limit: channel.maxDatagram,
        });
      else channel.send(datagram);
    });
    s.on('error', (err) => ctx.log.info('udp socket error', errorFields(err)));
    s.bind(0);
    sockets.set(family, s);
    return s;
  };
  const send = (address: string, port: number, data: Buffer): void => {
    // A datagram still in flight when the association ended has nowhere to go.
    if (channel.closed) return;
    const family = net.isIPv6(address) ? 6 : 4;
    socketFor(family).send(data, port, address, (err) => {
      if (err !== null && err !== undefined) drop('send failed', { address, ...errorFields(err) });
    });
  };
  channel.on('message', (datagram) => {
    let parsed;
    try {
      parsed = parseUdpDatagram(datagram);
    } catch (err) {
      if (err instanceof Socks5Error) {
        drop('malformed header', { bytes: datagram.length });
        return;
      }
      throw err;
    }
    // RFC 1928 §7: an implementation that does not reassemble drops fragments.
    if (parsed.frag !== 0) {
      drop('fragment', { frag: parsed.frag });
      return;
    }
    stats.up += parsed.data.length;
    if ((ctx.bucket?.take(parsed.data.length) ?? 0) > 0) {
      drop('client over its rate', { bytes: parsed.data.length });
      return;
    }
    const { host, port } = parsed.address;
    const data = Buffer.from(parsed.data);
    const cached = nameCache.get(host);
    if (cached !== undefined && cached.until > Date.now()) {
      send(cached.address, port, data);
      return;
    }
    resolveDestination(host, ctx.policy).then(
      (resolved) => {
        const address = resolved.allowed[0];
        if (address === undefined) {
          drop('destination not allowed', { host, reason: resolved.refusal ?? '' });
          return;
        }
        // A short cache: one lookup per datagram would be slow, a long one would pin a stale answer.
        nameCache.set(host, { address, until: Date.now() + 30_000 });
        if (nameCache.size > 1024) nameCache.delete(nameCache.keys().next().value!);
        if (!channel.closed) send(address, port, data);
      },
      (err: unknown) => drop('cannot resolve', { host, ...errorFields(err) }),
    );
  });
  channel.on('close', () => {
    for (const s of sockets.values()) s.close();
    sockets.clear();
  });
}
