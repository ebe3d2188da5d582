import { fileURLToPath } from 'node:url';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import koffi from 'koffi';
import { BraidError } from '../../../core/util/errors.js';
import { cpuBetween, sampleSched, type CpuShare, type SchedSample } from '../schedstat.js';
import {
  encodeMessage,
  MessageReceiver,
  monotonicMs,
  PatternSource,
  PatternVerifier,
  percentile,
  type IntegrityCounts,
} from './payload.js';

/**
 * The lab's plain TCP (and, under `mptcpize run`, MPTCP) load tool, run inside the
 * namespaces. One connection per measurement; the client's first line says what to
 * do, so the same server serves every run:
 *
 *   bulk.ts server --port 5201 [--cc cubic]
 *   bulk.ts client --host 10.200.0.1 --port 5201 [--bind 10.10.1.2] [--cc cubic]
 *                  (--ms 10000 | --bytes 20000000 | --messages 300) [--upload]
 *
 * Time mode: the receiver takes bytes for `ms` after its first byte, then closes;
 * goodput is exactly those bytes over that window. Bytes mode: the sender sends the
 * given count; completion time runs from the request (connection already up) to the
 * last byte (download) or to the server's report of the last byte (upload).
 * Messages mode (downloads): the server sends `messages` records of 1 KB, one every
 * 20 ms, each stamped with its send time; the client reports one-way delays.
 * Every byte is checked (payload.ts): bulk data against its position pattern,
 * messages by sequence number and filler. The receiver keeps a per-100 ms
 * histogram of bytes and the longest gap between arrivals, for stall and failover
 * plots. The client prints `{"event":"connected"}` and then one result line.
 */

export interface BulkRequest {
  upload: boolean;
  ms?: number;
  bytes?: number;
  messages?: MessagePlan;
}

export interface MessagePlan {
  count: number;
  intervalMs: number;
  size: number;
}

export const DEFAULT_MESSAGES: Omit<MessagePlan, 'count'> = { intervalMs: 20, size: 1024 };

/** One-way delays of the messages mode, ms, and what the record check found. */
export interface MessageResult {
  count: number;
  received: number;
  lost: number;
  duplicated: number;
  corrupt: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** RFC 3550 interarrival jitter of the one-way delays, in arrival order (ms). */
  jitterMs?: number;
}

/** RFC 3550 §6.4.1 jitter over transit times given in arrival order (ms). */
export function rfc3550Jitter(transitMs: readonly number[]): number {
  let j = 0;
  for (let i = 1; i < transitMs.length; i++)
    j += (Math.abs(transitMs[i]! - transitMs[i - 1]!) - j) / 16;
  return j;
}

export interface BulkResult {
  bytes: number;
  /** Window over which `bytes` arrived (first byte to last byte or end of window), ms. */
  windowMs: number;
  goodputBps: number;
  /** From connect() to the first byte at the receiver, ms. */
  firstByteMs: number;
  /** Bytes mode: from the request (connection up) to the last byte, ms. */
  completionMs?: number;
  /** From connect() until the request could be sent (handshakes), ms. */
  connectMs?: number;
  binMs: number;
  /** Bytes received per bin, starting at the first byte. */
  bins: number[];
  /** Longest time without any data arriving, first byte to end of window, ms. */
  maxGapMs?: number;
  /** When the longest gap started, ms after the first byte. */
  maxGapAtMs?: number;
  /** What the payload check found (bulk and bytes modes). */
  integrity?: IntegrityCounts;
  /** Messages mode. */
  messages?: MessageResult;
  /** The receiving process's main thread from the first byte to the result (schedstat.ts). */
  cpu?: CpuShare;
}

export const BIN_MS = 100;
const CHUNK_BYTES = 64 * 1024;
const IPPROTO_TCP = 6;
const TCP_CONGESTION = 13;

let cSetsockopt:
  ((fd: number, level: number, name: number, value: Buffer, len: number) => number) | null = null;

/** Sets the socket's congestion control (root may pick any the kernel has loaded). */
function setCongestion(socket: net.Socket, cc: string | undefined): void {
  if (cc === undefined) return;
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) throw new BraidError('BRAID_ERR_INTERNAL', 'socket has no fd');
  if (cSetsockopt === null) {
    const libc = koffi.load('libc.so.6');
    cSetsockopt = libc.func(
      'int setsockopt(int fd, int level, int name, const void *value, unsigned int len)',
    ) as (fd: number, level: number, name: number, value: Buffer, len: number) => number;
  }
  const name = Buffer.from(cc, 'latin1');
  if (cSetsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, name.length) !== 0) {
    throw new BraidError(
      'BRAID_ERR_CONFIG',
      `setsockopt(TCP_CONGESTION) failed, errno ${koffi.errno()}`,
      {
        value: cc,
      },
    );
  }
}

/** Counts received bytes into a histogram, checks them, tracks the longest gap. */
export class Receiver {
  bytes = 0;
  first = -1;
  last = -1;
  maxGapMs = 0;
  maxGapAtMs = 0;
  readonly bins: number[] = [];
  readonly verifier = new PatternVerifier();
  private sched: SchedSample | undefined;
  constructor(private readonly start: number) {}

  /** Counts `n` bytes arriving at `now` (performance.now()). */
  add(n: number, now: number): void {
    if (this.first < 0) {
      this.first = now;
      this.sched = sampleSched('self');
    } else if (now - this.last > this.maxGapMs) {
      this.maxGapMs = now - this.last;
      this.maxGapAtMs = this.last - this.first;
    }
    this.last = now;
    this.bytes += n;
    const bin = Math.floor((now - this.first) / BIN_MS);
    while (this.bins.length <= bin) this.bins.push(0);
    this.bins[bin]! += n;
  }

  /** Counts and checks a chunk of the position pattern. */
  take(chunk: Buffer, now: number): void {
    this.add(chunk.length, now);
    this.verifier.push(chunk);
  }

  result(windowMs: number | undefined, completionMs?: number, expectedBytes?: number): BulkResult {
    const window = windowMs ?? (this.first < 0 ? 0 : this.last - this.first);
    // A path that never came back leaves a gap up to the end of the window.
    const tail = this.first < 0 ? 0 : this.first + window - this.last;
    const gap = tail > this.maxGapMs ? { ms: tail, at: this.last - this.first } : undefined;
    const cpu = cpuBetween(this.sched, sampleSched('self'));
    return {
      bytes: this.bytes,
      windowMs: window,
      goodputBps: window > 0 ? (this.bytes * 8000) / window : 0,
      firstByteMs: this.first < 0 ? -1 : this.first - this.start,
      ...(completionMs === undefined ? {} : { completionMs }),
      binMs: BIN_MS,
      bins: this.bins,
      maxGapMs: gap?.ms ?? this.maxGapMs,
      maxGapAtMs: gap?.at ?? this.maxGapAtMs,
      integrity: this.verifier.finish(expectedBytes),
      ...(cpu === undefined ? {} : { cpu }),
    };
  }
}

/** Summarises a message receiver's findings. */
export function messageResult(rx: MessageReceiver): MessageResult {
  const s = rx.finish();
  return {
    count: s.expected,
    received: s.received,
    lost: s.lost,
    duplicated: s.duplicated,
    corrupt: s.corrupt,
    p50Ms: percentile(s.delaysMs, 50),
    p99Ms: percentile(s.delaysMs, 99),
    maxMs: s.delaysMs.reduce((m, d) => Math.max(m, d), 0),
    jitterMs: rfc3550Jitter(s.delaysMs),
  };
}

/** Sends `plan.count` stamped records on a fixed schedule (not drifting with timer lateness), then ends. */
export async function sendMessages(out: Writable, plan: MessagePlan): Promise<void> {
  const start = performance.now();
  for (let seq = 0; seq < plan.count && !out.destroyed; seq++) {
    const due = start + seq * plan.intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    out.write(encodeMessage(seq, plan.size, monotonicMs()));
  }
  if (!out.destroyed) out.end();
}

/**
 * Writes the position pattern until `limit` bytes (Infinity: until the stream closes),
 * one CHUNK_BYTES chunk per event-loop turn while `out` takes more, as an application
 * reading a file hands over its chunks. Filling until write() said no in one turn made
 * the Braid server generate its whole writable buffer at once (1 MB of highWaterMark
 * on top of the session's send buffer: about 100 ms of pattern at a bulk run's start
 * and 6 ms at every 'drain'), stalling the engine that shares its event loop; a TCP
 * socket (16 KiB highWaterMark) never took more than one chunk per turn.
 */
export function pump(out: Writable, limit: number): void {
  const source = new PatternSource();
  let queued = false;
  let ended = false;
  const step = (): void => {
    queued = false;
    if (out.destroyed || ended) return;
    const more =
      source.offset < limit && out.write(source.next(Math.min(CHUNK_BYTES, limit - source.offset)));
    if (source.offset >= limit) {
      ended = true;
      out.end();
    } else if (more) later();
  };
  const later = (): void => {
    if (queued) return;
    queued = true;
    setImmediate(step);
  };
  out.on('drain', later);
  step();
}

/** Receives on `socket`: in time mode until `ms` after the first byte, else to EOF. */
export function receive(
  socket: Readable,
  start: number,
  ms: number | undefined,
  initial?: Buffer,
): Promise<Receiver> {
  const rx = new Receiver(start);
  return new Promise((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      socket.off('data', onData);
      resolve(rx);
    };
    const onData = (chunk: Buffer): void => {
      const now = performance.now();
      if (ms !== undefined && rx.first >= 0 && now - rx.first >= ms) {
        finish();
        return;
      }
      rx.take(chunk, now);
    };
    if (initial !== undefined && initial.length > 0) onData(initial);
    socket.on('data', onData);
    socket.once('end', finish);
    socket.once('close', finish);
    if (ms !== undefined) {
      // Also end the window when data stops arriving altogether (a black-holed path).
      const tick = setInterval(() => {
        if (rx.first >= 0 && performance.now() - rx.first >= ms) {
          clearInterval(tick);
          finish();
        }
      }, 20);
      socket.once('close', () => clearInterval(tick));
    }
  });
}

function serve(port: number, cc: string | undefined): void {
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    setCongestion(socket, cc);
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      socket.off('data', onHead);
      const req = JSON.parse(head.subarray(0, nl).toString('utf8')) as BulkRequest;
      const rest = head.subarray(nl + 1);
      if (req.messages !== undefined) {
        void sendMessages(socket, req.messages);
        return;
      }
      if (!req.upload) {
        pump(socket, req.bytes ?? Infinity);
        return;
      }
      void receive(socket, performance.now(), req.ms, rest).then((rx) => {
        socket.end(JSON.stringify(rx.result(req.ms, undefined, req.bytes)) + '\n');
        // Time mode: the client still writes; close hard once the report is out.
        if (req.ms !== undefined)
          socket.once('finish', () => setTimeout(() => socket.destroy(), 200));
      });
    };
    socket.on('data', onHead);
  });
  server.listen(port, '0.0.0.0', () =>
    process.stdout.write(JSON.stringify({ event: 'listening', port }) + '\n'),
  );
  process.stdin.on('end', () => process.exit(0)).resume();
}

async function client(options: {
  host: string;
  port: number;
  bind?: string;
  cc?: string;
  request: BulkRequest;
}): Promise<BulkResult> {
  const start = performance.now();
  const socket = net.connect({
    host: options.host,
    port: options.port,
    noDelay: true,
    ...(options.bind === undefined ? {} : { localAddress: options.bind }),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  setCongestion(socket, options.cc);
  process.stdout.write(JSON.stringify({ event: 'connected' }) + '\n');
  const requested = performance.now();
  const connectMs = requested - start;
  socket.write(JSON.stringify(options.request) + '\n');
  const { request } = options;
  if (request.messages !== undefined) {
    const rx = new MessageReceiver(request.messages.size, request.messages.count);
    socket.on('data', (chunk: Buffer) => rx.push(chunk));
    await new Promise((resolve) => socket.once('close', resolve));
    return { ...new Receiver(start).result(0), connectMs, messages: messageResult(rx) };
  }
  if (!request.upload) {
    const rx = await receive(socket, start, request.ms);
    const completion = request.bytes === undefined ? undefined : rx.last - requested;
    socket.destroy();
    return { ...rx.result(request.ms, completion, request.bytes), connectMs };
  }
  socket.on('error', () => socket.destroy());
  let text = '';
  const report = new Promise<BulkResult>((resolve, reject) => {
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(text.slice(0, nl)) as BulkResult);
    });
    socket.once('close', () =>
      reject(new BraidError('BRAID_ERR_TRANSPORT', 'server closed without a report')),
    );
  });
  pump(socket, request.bytes ?? Infinity);
  const result = await report;
  socket.destroy();
  return request.bytes === undefined
    ? { ...result, connectMs }
    : { ...result, connectMs, completionMs: performance.now() - requested };
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: 'string', default: '5201' },
      host: { type: 'string' },
      bind: { type: 'string' },
      cc: { type: 'string' },
      ms: { type: 'string' },
      bytes: { type: 'string' },
      messages: { type: 'string' },
      upload: { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  if (positionals[0] === 'server') {
    serve(port, values.cc);
    return;
  }
  if (
    positionals[0] !== 'client' ||
    values.host === undefined ||
    [values.ms, values.bytes, values.messages].filter((v) => v !== undefined).length !== 1 ||
    (values.messages !== undefined && values.upload)
  ) {
    throw new BraidError(
      'BRAID_ERR_USAGE',
      'usage: bulk.ts server|client --host H (--ms N | --bytes N | --messages N) [--upload] [...]',
    );
  }
  const request: BulkRequest = {
    upload: values.upload,
    ...(values.ms === undefined ? {} : { ms: Number(values.ms) }),
    ...(values.bytes === undefined ? {} : { bytes: Number(values.bytes) }),
    ...(values.messages === undefined
      ? {}
      : { messages: { count: Number(values.messages), ...DEFAULT_MESSAGES } }),
  };
  const result = await client({
    host: values.host,
    port,
    request,
    ...(values.bind === undefined ? {} : { bind: values.bind }),
    ...(values.cc === undefined ? {} : { cc: values.cc }),
  });
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

// Only as a program: braid-bulk.ts imports Receiver from here.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1])
  await main();
