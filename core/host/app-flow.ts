import { connect as netConnect, type Socket } from 'node:net';
import type { BraidClient } from '../api/client.js';
import type { BraidStream } from '../api/braid-stream.js';
import type { BraidMessageSocket } from '../api/message-socket.js';
import type { AppRoute, AppRule } from './contract.js';
import { errorFields, type Logger } from '../util/log.js';

/**
 * One application's traffic as the engine carries it: a session on the association
 * (a byte stream for a TCP app, a message session with the rule's UDP semantics for a
 * UDP app), or, when bypassed, a plain TCP connection from the best uplink's address
 * (DESIGN §4: "a bypass option returns a plain net.Socket on the best uplink").
 */
export interface AppFlow {
  readonly route: AppRoute;
  /** Offers `bytes` of application data; returns how many were taken. */
  offer(bytes: number): number;
  /** Bytes the app has sent on this flow so far. */
  readonly sentBytes: number;
  readonly closed: boolean;
  close(): void;
}

/** A block of application bytes, reused: the demo's content does not matter, its rate does. */
const BLOCK = Buffer.alloc(64 * 1024, 0x5a);

export function openSessionFlow(
  client: BraidClient,
  rule: AppRule,
  transport: 'tcp' | 'udp',
  log: Logger,
): AppFlow {
  const semantics = transport === 'tcp' ? 'reliable-ordered' : rule.udpSemantics;
  // A UDP app whose rule asks for reliable-ordered gets a byte stream, as a TCP app does.
  return semantics === 'reliable-ordered'
    ? new StreamFlow(client.openStream({ target: 'echo', priorities: rule.priorities }), log)
    : new MessageFlow(
        client.openMessages({
          semantics,
          target: 'echo',
          priorities: rule.priorities,
        }),
        log,
      );
}

class StreamFlow implements AppFlow {
  sentBytes = 0;
  closed = false;
  readonly route: AppRoute;

  constructor(
    private readonly stream: BraidStream,
    log: Logger,
  ) {
    this.route = { kind: 'association', sessionId: stream.sessionId };
    // The echo comes back; reading it is the download direction.
    stream.resume();
    stream.on('error', (err) => log.info('app session ended', errorFields(err)));
    stream.on('close', () => (this.closed = true));
  }

  offer(bytes: number): number {
    if (this.closed || this.stream.writableNeedDrain) return 0;
    let left = bytes;
    while (left > 0) {
      const n = Math.min(left, BLOCK.length);
      this.stream.write(BLOCK.subarray(0, n));
      left -= n;
    }
    this.sentBytes += bytes;
    return bytes;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.end();
  }
}

class MessageFlow implements AppFlow {
  sentBytes = 0;
  closed = false;
  readonly route: AppRoute;
  private blocked = false;

  constructor(
    private readonly socket: BraidMessageSocket,
    log: Logger,
  ) {
    this.route = { kind: 'association', sessionId: socket.sessionId };
    socket.on('message', () => undefined);
    socket.on('drain', () => (this.blocked = false));
    socket.on('error', (err) => log.info('app message session ended', errorFields(err)));
    socket.on('close', () => (this.closed = true));
  }

  offer(bytes: number): number {
    if (this.closed || this.blocked) return 0;
    const size = Math.min(1000, this.socket.maxMessageSize);
    let sent = 0;
    while (sent + size <= bytes) {
      sent += size;
      if (!this.socket.send(BLOCK.subarray(0, size))) {
        this.blocked = true;
        break;
      }
    }
    this.sentBytes += sent;
    return sent;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
  }
}

/** A plain TCP connection from one uplink's address, outside the association. */
export class BypassFlow implements AppFlow {
  sentBytes = 0;
  closed = false;
  readonly route: AppRoute;
  private readonly socket: Socket;

  constructor(
    target: { host: string; port: number },
    uplink: { id: string; address: string } | null,
    log: Logger,
  ) {
    this.route = { kind: 'bypass', uplinkId: uplink?.id ?? null };
    this.socket = netConnect({
      host: target.host,
      port: target.port,
      ...(uplink === null ? {} : { localAddress: uplink.address }),
    });
    this.socket.resume();
    this.socket.on('error', (err) => log.info('bypass connection failed', errorFields(err)));
    this.socket.on('close', () => (this.closed = true));
  }

  offer(bytes: number): number {
    if (this.closed || this.socket.connecting || this.socket.writableNeedDrain) return 0;
    let left = bytes;
    while (left > 0) {
      const n = Math.min(left, BLOCK.length);
      this.socket.write(BLOCK.subarray(0, n));
      left -= n;
    }
    this.sentBytes += bytes;
    return bytes;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
  }
}
