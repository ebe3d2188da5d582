/**
 * Through the relay: each CONNECT is one Braid session with target "tcp:host:port"
 * (the name is resolved at the relay, so the lookup does not leak on one uplink),
 * each UDP ASSOCIATE one session with target "udp". The relay's first bytes say how
 * its connect went (forward-reply.ts), so the SOCKS reply tells the truth.
 */
import { BraidClient, type ClientOptions } from '../api/client.js';
import type { Association } from '../session/association.js';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import { MessageDatagramChannel, StreamDatagramChannel } from '../relay/datagram-channel.js';
import { ForwardStatus, readForwardReply } from '../relay/forward-reply.js';
import { formatTcpTarget } from '../relay/forward-target.js';
import {
  slidersOf,
  type ConnectOutcome,
  type DatagramOutcome,
  type Outbound,
  type OutboundRequest,
} from './outbound.js';
import type { AppRule } from './rules.js';
import { Reply, type ReplyCode } from './socks5-parser.js';
import type { HostPort } from './socks5-encode.js';

/**
 * Playout deadline for apps whose UDP is unreliable-ordered (calls, live streams):
 * ITU-T G.114 puts one-way mouth-to-ear delay under 150 ms for good quality.
 */
const UDP_PLAYOUT_DEADLINE_MS = 150;

export interface RelayOutboundOptions extends Omit<ClientOptions, 'logger'> {
  logger?: Logger;
  /** How long to wait for the relay's reply to a CONNECT (default 20 s). */
  replyTimeoutMs?: number;
}

export class RelayOutbound implements Outbound {
  readonly kind = 'relay' as const;
  private client: BraidClient | undefined;
  private connecting: Promise<BraidClient> | undefined;
  private closed = false;
  private readonly log: Logger;
  private readonly replyTimeoutMs: number;

  private constructor(private readonly options: RelayOutboundOptions) {
    this.log = (options.logger ?? createLogger()).child({ component: 'relay-outbound' });
    this.replyTimeoutMs = options.replyTimeoutMs ?? 20_000;
  }

  /** Connects the association now, so that a wrong invite fails at start, not at the first CONNECT. */
  static async open(options: RelayOutboundOptions): Promise<RelayOutbound> {
    const outbound = new RelayOutbound(options);
    await outbound.association();
    return outbound;
  }

  /** The live client, reconnecting once the association closed (the relay restarted, every path died). */
  private async association(): Promise<BraidClient> {
    if (this.closed) throw new BraidError('BRAID_ERR_ASSOCIATION_CLOSED', 'proxy is closing');
    if (this.client !== undefined) return this.client;
    this.connecting ??= BraidClient.connect({ ...this.options, logger: this.log }).then(
      (result) => {
        this.connecting = undefined;
        if (result.kind !== 'braid')
          throw new BraidError(
            'BRAID_ERR_LEGACY_PEER',
            `the relay does not speak Braid (${result.reason})`,
          );
        const client = result.client;
        this.client = client;
        client.association.once('closed', () => {
          if (this.client === client) this.client = undefined;
          if (!this.closed)
            this.log.warn('association to the relay closed; the next connection reconnects');
        });
        return client;
      },
      (err: unknown) => {
        this.connecting = undefined;
        throw err;
      },
    );
    return this.connecting;
  }

  /** The association, when up (for status and tests). */
  get current(): Association | undefined {
    return this.client?.association;
  }

  async connect(request: OutboundRequest): Promise<ConnectOutcome> {
    let client: BraidClient;
    try {
      client = await this.association();
    } catch (err) {
      this.log.warn('no association to the relay', errorFields(err));
      return {
        ok: false,
        reply: Reply.networkUnreachable,
        reason: `relay unreachable: ${(err as Error).message}`,
      };
    }
    const stream = client.openStream({
      target: formatTcpTarget(request.host, request.port),
      priorities: request.rule.priorities,
      policy: slidersOf(request.rule),
    });
    try {
      const reply = await readForwardReply(stream, this.replyTimeoutMs);
      if (reply.status !== ForwardStatus.ok) {
        stream.destroy();
        return { ok: false, reply: reply.status as ReplyCode, reason: `relay: ${reply.text}` };
      }
      return {
        ok: true,
        stream,
        bound: parseBound(reply.text),
        via: 'relay',
        session: stream.session,
      };
    } catch (err) {
      stream.destroy();
      return {
        ok: false,
        reply: Reply.generalFailure,
        reason: `relay session failed: ${(err as Error).message}`,
      };
    }
  }

  async datagrams(request: { rule: AppRule }): Promise<DatagramOutcome> {
    let client: BraidClient;
    try {
      client = await this.association();
    } catch (err) {
      return {
        ok: false,
        reply: Reply.networkUnreachable,
        reason: `relay unreachable: ${(err as Error).message}`,
      };
    }
    const { udpSemantics, priorities } = request.rule;
    if (udpSemantics !== 'reliable-ordered') {
      // The app's UDP semantics travel in the OPEN frame; the relay answers a refusal
      // with a reset, which closes the channel (and so the SOCKS association).
      const socket = client.openMessages({
        semantics: udpSemantics,
        target: 'udp',
        priorities,
        policy: slidersOf(request.rule),
        ...(udpSemantics === 'unreliable-ordered' ? { deadlineMs: UDP_PLAYOUT_DEADLINE_MS } : {}),
      });
      return {
        ok: true,
        channel: new MessageDatagramChannel(socket, this.log),
        via: 'relay',
        session: socket.session,
      };
    }
    const stream = client.openStream({
      target: 'udp',
      priorities,
      policy: slidersOf(request.rule),
    });
    try {
      const reply = await readForwardReply(stream, this.replyTimeoutMs);
      if (reply.status !== ForwardStatus.ok) {
        stream.destroy();
        return { ok: false, reply: reply.status as ReplyCode, reason: `relay: ${reply.text}` };
      }
    } catch (err) {
      stream.destroy();
      return {
        ok: false,
        reply: Reply.generalFailure,
        reason: `relay session failed: ${(err as Error).message}`,
      };
    }
    return {
      ok: true,
      channel: new StreamDatagramChannel(stream, this.log),
      via: 'relay',
      session: stream.session,
    };
  }

  close(): void {
    this.closed = true;
    this.client?.close();
    this.client = undefined;
  }
}

/** "address:port" (IPv6 without brackets: split at the last colon). */
function parseBound(text: string): HostPort {
  const at = text.lastIndexOf(':');
  const host = text.slice(0, at);
  const port = Number(text.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    return { host: '0.0.0.0', port: 0 };
  return { host: host.replace(/^::ffff:(?=\d+\.)/i, ''), port };
}
