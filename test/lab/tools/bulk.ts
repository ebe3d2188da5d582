import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { parseArgs } from 'node:util';
import koffi from 'koffi';
import { BraidError } from '../../../core/util/errors.js';

/**
 * The lab's plain TCP (and, under `mptcpize run`, MPTCP) load tool, run inside the
 * namespaces. One connection per measurement; the client's first line says what to
 * do, so the same server serves every run:
 *
 *   bulk.ts server --port 5201 [--cc cubic]
 *   bulk.ts client --host 10.200.0.1 --port 5201 [--bind 10.10.1.2] [--cc cubic]
 *                  (--ms 10000 | --bytes 20000000) [--upload]
 *
 * Time mode: the receiver takes bytes for `ms` after its first byte, then closes;
 * goodput is exactly those bytes over that window. Bytes mode: the sender sends the
 * given count; completion time runs from the client's connect() to the last byte
 * (download) or to the server's report of the last byte (upload). The receiver
 * keeps a per-100 ms histogram of bytes for stall and failover plots.
 * The client prints `{"event":"connected"}` and then one result line (BulkResult).
 */

export interface BulkRequest {
  upload: boolean;
  ms?: number;
  bytes?: number;
}

export interface BulkResult {
  bytes: number;
  /** Window over which `bytes` arrived (first byte to last byte or end of window), ms. */
  windowMs: number;
  goodputBps: number;
  /** From connect() to the first byte at the receiver, ms. */
  firstByteMs: number;
  /** Bytes mode: from connect() to the last byte acknowledged, ms. */
  completionMs?: number;
  binMs: number;
  /** Bytes received per bin, starting at the first byte. */
  bins: number[];
}

export const BIN_MS = 100;
const CHUNK = randomBytes(64 * 1024);
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

/** Counts received bytes into a histogram; stops after `ms` (time mode). */
export class Receiver {
  bytes = 0;
  first = -1;
  last = -1;
  readonly bins: number[] = [];
  constructor(private readonly start: number) {}

  add(n: number, now: number): void {
    if (this.first < 0) this.first = now;
    this.last = now;
    this.bytes += n;
    const bin = Math.floor((now - this.first) / BIN_MS);
    while (this.bins.length <= bin) this.bins.push(0);
    this.bins[bin]! += n;
  }

  result(windowMs: number | undefined, completionMs?: number): BulkResult {
    const window = windowMs ?? (this.first < 0 ? 0 : this.last - this.first);
    return {
      bytes: this.bytes,
      windowMs: window,
      goodputBps: window > 0 ? (this.bytes * 8000) / window : 0,
      firstByteMs: this.first < 0 ? -1 : this.first - this.start,
      ...(completionMs === undefined ? {} : { completionMs }),
      binMs: BIN_MS,
      bins: this.bins,
    };
  }
}

/** Writes CHUNK until `limit` bytes (Infinity: until the socket closes). */
function pump(socket: net.Socket, limit: number): void {
  let sent = 0;
  const fill = (): void => {
    while (sent < limit && !socket.destroyed) {
      const n = Math.min(CHUNK.length, limit - sent);
      sent += n;
      const more = socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
      if (!more) return;
    }
    if (sent >= limit) socket.end();
  };
  socket.on('drain', fill);
  fill();
}

/** Receives on `socket`: in time mode until `ms` after the first byte, else to EOF. */
function receive(
  socket: net.Socket,
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
      rx.add(chunk.length, now);
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
      if (!req.upload) {
        pump(socket, req.bytes ?? Infinity);
        return;
      }
      void receive(socket, performance.now(), req.ms, rest).then((rx) => {
        socket.end(JSON.stringify(rx.result(req.ms)) + '\n');
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
  socket.write(JSON.stringify(options.request) + '\n');
  const { request } = options;
  if (!request.upload) {
    const rx = await receive(socket, start, request.ms);
    const completion = request.bytes === undefined ? undefined : rx.last - start;
    socket.destroy();
    return rx.result(request.ms, completion);
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
    ? result
    : { ...result, completionMs: performance.now() - start };
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
    (values.ms === undefined) === (values.bytes === undefined)
  ) {
    throw new BraidError(
      'BRAID_ERR_USAGE',
      'usage: bulk.ts server|client --host H (--ms N | --bytes N) [...]',
    );
  }
  const request: BulkRequest = {
    upload: values.upload,
    ...(values.ms === undefined ? {} : { ms: Number(values.ms) }),
    ...(values.bytes === undefined ? {} : { bytes: Number(values.bytes) }),
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
