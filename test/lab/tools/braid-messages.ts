import { parseArgs } from 'node:util';
import type { BraidMessageSocket, MessageSocketStats } from '../../../core/api/message-socket.js';
import { BraidClient } from '../../../core/api/client.js';
import type { Association } from '../../../core/session/association.js';
import type { Config } from '../../../core/session/config.js';
import type { MessageSemantics } from '../../../core/session/session.js';
import { BraidError } from '../../../core/util/errors.js';
import { createLogger, errorFields } from '../../../core/util/log.js';
import { OBJECTIVES, SEMANTICS, type Objective } from '../../../core/wire/frame.js';
import { rfc3550Jitter } from './bulk.js';
import {
  encodeMessage,
  MESSAGE_HEADER,
  MESSAGE_MAGIC,
  monotonicMs,
  percentile,
} from './payload.js';

import { serveLabRelay } from './lab-relay.js';
/**
 * Braid message sessions for the lab's objectives section (issue 4): the server sends
 * stamped records (payload.ts) on a message session opened with the client's
 * semantics, priorities and playout deadline; the client checks each record and
 * reports one-way delays, RFC 3550 jitter, loss, order and deadline violations.
 *
 *   server --host H [--addresses A,B]   prints {"event":"listening","invite":...}, and
 *                                        one {"event":"done",...} line per finished
 *                                        session: its send counters and the server
 *                                        association's buffer peaks (the sender's queue)
 *   client --invite I --via A[,B..] --semantics S --priorities latency,throughput
 *          --count N --interval-ms T --size B [--deadline-ms D] --tag X
 *                                        prints {"event":"connected"}, then a
 *                                        MessagesResult line.
 * The session's target `lab:msgs:<count>:<intervalMs>:<size>:<tag>` tells the server
 * what to send; the tag pairs the server's "done" line with the client's run.
 */

/** What the client measured, and what its own association says (the receiver side). */
export interface MessagesResult {
  tag: string;
  semantics: MessageSemantics;
  priorities: Objective[];
  deadlineMs?: number;
  count: number;
  received: number;
  /** Sequence numbers never received (count − distinct received). */
  lost: number;
  duplicated: number;
  corrupt: number;
  /** Delivered with a lower sequence number than one delivered before it. */
  outOfOrder: number;
  /** Delivered with a one-way delay (send() to delivery) above the deadline. */
  afterDeadline: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** RFC 3550 interarrival jitter of the one-way delays, in arrival order (ms). */
  jitterMs: number;
  /** The ten longest delays: sequence number, delay ms, ms after the first arrival. */
  worst: Array<{ seq: number; ms: number; atMs: number }>;
  /** From connect() to the session being open. */
  connectMs: number;
  /** The client's socket counters (delivered, late, skipped, duplicates ...). */
  stats: MessageSocketStats;
  /** The client association's buffer peaks (its reorder buffer) and bounds. */
  peaks: BufferPeaks;
  /** Most messages held behind a gap (unreliable-ordered), sampled every 2 ms. */
  heldPeak: number;
  /** The client's paths; `messages`: message copies that arrived on each. */
  paths: Array<{
    local: string;
    srttMs: number;
    lossRate: number;
    sent: number;
    lost: number;
    messages: number;
  }>;
}

export type BufferPeaks = ReturnType<Association['bufferPeaks']>;

/** The server's line when a session ended. */
export interface MessagesServerDone {
  event: 'done';
  tag: string;
  stats: MessageSocketStats;
  peaks: BufferPeaks;
  /** Bytes of message payload handed to send() and put on the wire (copies included). */
  payloadBytes: number;
  wireCopies: number;
  /** The sender's paths: packets sent and declared lost, its loss estimate at the end. */
  paths: Array<{
    local: string;
    sent: number;
    lost: number;
    lossRate: number;
    srttMs: number;
    cwnd: number;
  }>;
  /** The sender's never-worse guard at the end (mode, fallbacks). */
  guard: { mode: string; fallbacks: number };
}

const TARGET = /^lab:msgs:(\d{1,7}):(\d{1,5}):(\d{2,4}):([\w.-]{1,40})$/;

const logger = createLogger({ level: 'warn' });
const list = (s: string | undefined): string[] => (s ?? '').split(',').filter((x) => x.length > 0);

function serve(socket: BraidMessageSocket, association: Association): void {
  const m = TARGET.exec(socket.session.target);
  if (m === null) {
    socket.destroy(
      new BraidError('BRAID_ERR_USAGE', 'unknown lab target', { value: socket.session.target }),
    );
    return;
  }
  const [count, intervalMs, size] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const tag = m[4]!;
  socket.on('error', (err) =>
    logger.info('lab message session ended with error', { tag, ...errorFields(err) }),
  );
  socket.on('close', () => {
    const stats = socket.stats;
    const done: MessagesServerDone = {
      event: 'done',
      tag,
      stats,
      peaks: association.bufferPeaks(),
      payloadBytes: stats.queued * size,
      wireCopies: stats.copiesSent,
      paths: association.pathSummary().map((p) => ({
        local: p.local,
        sent: p.sent,
        lost: p.lost,
        lossRate: p.lossRate,
        srttMs: p.srttMs,
        cwnd: p.cwnd,
      })),
      guard: { mode: socket.session.guard.mode, fallbacks: socket.session.guard.fallbacks },
    };
    process.stdout.write(JSON.stringify(done) + '\n');
  });
  // A fixed schedule (not drifting with timer lateness), as bulk.ts sendMessages.
  const start = performance.now();
  let seq = 0;
  const tick = (): void => {
    while (seq < count && !socket.session.isDone) {
      const due = start + seq * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) {
        setTimeout(tick, wait);
        return;
      }
      socket.send(encodeMessage(seq, size, monotonicMs()));
      seq++;
    }
    if (!socket.session.isDone) socket.end();
  };
  tick();
}

async function server(host: string, addresses: string[]): Promise<void> {
  await serveLabRelay({
    host,
    addresses,
    logger,
    // Diagnostics only (e.g. '{"congestion":"bbr"}'); the bench runs the defaults.
    ...(process.env.BRAID_LAB_CONFIG === undefined
      ? {}
      : { config: JSON.parse(process.env.BRAID_LAB_CONFIG) as Partial<Config> }),
    attach: (listener) => listener.on('messages', serve),
  });
}

interface ClientOptions {
  invite: string;
  via: string[];
  semantics: MessageSemantics;
  priorities: Objective[];
  count: number;
  intervalMs: number;
  size: number;
  deadlineMs?: number;
  tag: string;
}

async function client(o: ClientOptions): Promise<MessagesResult> {
  const start = performance.now();
  const connected = await BraidClient.connect({ invite: o.invite, via: o.via, logger });
  if (connected.kind !== 'braid')
    throw new BraidError('BRAID_ERR_HANDSHAKE', `peer answered as legacy: ${connected.reason}`);
  const braid = connected.client;
  const connectMs = performance.now() - start;
  const socket = braid.openMessages({
    semantics: o.semantics,
    target: `lab:msgs:${o.count}:${o.intervalMs}:${o.size}:${o.tag}`,
    priorities: o.priorities,
    ...(o.deadlineMs === undefined ? {} : { deadlineMs: o.deadlineMs }),
  });
  process.stdout.write(JSON.stringify({ event: 'connected' }) + '\n');
  // Nothing to send from here: our half closes at once.
  socket.end();
  const seen = new Uint8Array(o.count);
  const delays: number[] = [];
  let duplicated = 0;
  let corrupt = 0;
  let outOfOrder = 0;
  let afterDeadline = 0;
  let highest = -1;
  let heldPeak = 0;
  let firstArrival = -1;
  let worst: Array<{ seq: number; ms: number; atMs: number }> = [];
  const sampler = setInterval(() => {
    heldPeak = Math.max(heldPeak, socket.session.msg?.recv.heldCount ?? 0);
  }, 2);
  socket.on('message', (record) => {
    const arrived = monotonicMs();
    heldPeak = Math.max(heldPeak, socket.session.msg?.recv.heldCount ?? 0);
    let ok = record.length === o.size && record.readUInt32BE(0) === MESSAGE_MAGIC;
    const seq = ok ? record.readUInt32BE(4) : -1;
    for (let k = MESSAGE_HEADER; ok && k < record.length; k++)
      ok = record[k] === ((seq * 31 + k) & 0xff);
    if (!ok || seq >= o.count) {
      corrupt++;
      return;
    }
    if (seen[seq] === 1) {
      duplicated++;
      return;
    }
    seen[seq] = 1;
    const delay = arrived - record.readDoubleBE(8);
    delays.push(delay);
    if (firstArrival < 0) firstArrival = arrived;
    worst.push({ seq, ms: delay, atMs: arrived - firstArrival });
    if (worst.length > 20) {
      worst.sort((a, b) => b.ms - a.ms);
      worst.length = 10;
    }
    if (seq < highest) outOfOrder++;
    highest = Math.max(highest, seq);
    if (o.deadlineMs !== undefined && delay > o.deadlineMs) afterDeadline++;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('close', resolve);
    socket.once('error', reject);
  }).finally(() => clearInterval(sampler));
  const received = delays.length;
  const result: MessagesResult = {
    tag: o.tag,
    semantics: o.semantics,
    priorities: o.priorities,
    ...(o.deadlineMs === undefined ? {} : { deadlineMs: o.deadlineMs }),
    count: o.count,
    received,
    lost: o.count - received,
    duplicated,
    corrupt,
    outOfOrder,
    afterDeadline,
    p50Ms: percentile(delays, 50),
    p99Ms: percentile(delays, 99),
    maxMs: delays.reduce((m, d) => Math.max(m, d), 0),
    jitterMs: rfc3550Jitter(delays),
    worst: (worst = worst.sort((a, b) => b.ms - a.ms).slice(0, 10)),
    connectMs,
    stats: socket.stats,
    peaks: braid.association.bufferPeaks(),
    heldPeak,
    paths: braid.association.pathSummary().map((p) => ({
      local: p.local,
      srttMs: p.srttMs,
      lossRate: p.lossRate,
      sent: p.sent,
      lost: p.lost,
      messages: braid.association.paths.get(p.id)?.stats.messagesReceived ?? 0,
    })),
  };
  braid.close();
  return result;
}

function parseClient(values: Record<string, string | undefined>): ClientOptions {
  const semantics = values.semantics as MessageSemantics;
  const priorities = list(values.priorities) as Objective[];
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n) || n <= 0)
      throw new BraidError('BRAID_ERR_USAGE', `--${name} must be a positive whole number`, {
        value: v,
      });
    return n;
  };
  if (
    values.invite === undefined ||
    values.tag === undefined ||
    !SEMANTICS.includes(semantics) ||
    semantics === ('reliable-ordered' as string) ||
    !priorities.every((p) => OBJECTIVES.includes(p))
  ) {
    throw new BraidError(
      'BRAID_ERR_USAGE',
      'usage: braid-messages client --invite I --via A,B --semantics S --priorities P,Q ' +
        '--count N --interval-ms T --size B [--deadline-ms D] --tag X',
      { value: `${values.semantics}/${values.priorities}` },
    );
  }
  return {
    invite: values.invite,
    via: list(values.via),
    semantics,
    priorities,
    count: num('count', values.count),
    intervalMs: num('interval-ms', values['interval-ms']),
    size: num('size', values.size),
    ...(values['deadline-ms'] === undefined
      ? {}
      : { deadlineMs: num('deadline-ms', values['deadline-ms']) }),
    tag: values.tag,
  };
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      addresses: { type: 'string' },
      invite: { type: 'string' },
      via: { type: 'string' },
      semantics: { type: 'string' },
      priorities: { type: 'string' },
      count: { type: 'string' },
      'interval-ms': { type: 'string' },
      size: { type: 'string' },
      'deadline-ms': { type: 'string' },
      tag: { type: 'string' },
    },
  });
  if (positionals[0] === 'server') {
    await server(values.host ?? '0.0.0.0', list(values.addresses));
  } else if (positionals[0] === 'client') {
    const result = await client(parseClient(values));
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
  } else {
    process.stderr.write('usage: braid-messages server|client ...\n');
    process.exit(2);
  }
}

await main();
