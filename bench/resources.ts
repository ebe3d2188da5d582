/**
 * `npm run resources`: memory and responsiveness of a relay under four kinds of
 * pressure (SECURITY.md, resource bounds). Relay and attackers share this process,
 * so RSS includes the attackers' sockets (a few KiB each); the event-loop delay is
 * the relay's own, since its sockets are served by this loop.
 *
 *   half-open  10,000 TCP connections to the control port that start TLS and stop
 *   sessions   1,000 concurrent echo sessions over one association
 *   no-ack     the relay sends to a client that never acknowledges anything
 *   gap        a client opens sessions and fills each receive window behind a gap
 *
 * Usage: npm run resources [-- half-open sessions no-ack gap] [--bound-mb 1024]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BraidClient } from '../core/api/client.js';
import type { ControlServer } from '../core/handshake/control.js';
import { startRelay, type Relay } from '../core/relay/relay.js';
import type { Path } from '../core/session/path.js';
import { createLogger } from '../core/util/log.js';
import type { Frame } from '../core/wire/frame.js';
import { echoTransfer, tapSubflow, type OnPathTap } from '../test/security/support/on-path.js';

const quiet = createLogger({ level: 'silent' });
const MB = 1024 * 1024;

interface Result {
  scenario: string;
  peakRssMb: number;
  rssGrowthMb: number;
  eldP99Ms: number;
  eldMaxMs: number;
  notes: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Samples RSS and the event-loop delay while `body` runs. */
async function measure(scenario: string, body: () => Promise<string>): Promise<Result> {
  if (global.gc !== undefined) global.gc();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  let notes: string;
  try {
    notes = await body();
  } finally {
    eld.disable();
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return {
    scenario,
    peakRssMb: Math.round(peak / MB),
    rssGrowthMb: Math.round((peak - before) / MB),
    eldP99Ms: Math.round(eld.percentile(99) / 1e5) / 10,
    eldMaxMs: Math.round(eld.max / 1e5) / 10,
    notes,
  };
}

async function withRelay<T>(body: (relay: Relay) => Promise<T>): Promise<T> {
  const stateDir = mkdtempSync(join(tmpdir(), 'braid-resources-'));
  const relay = await startRelay({
    stateDir,
    host: '127.0.0.1',
    port: 0,
    logger: quiet,
    limits: { maxSessions: 5000 },
  });
  try {
    return await body(relay);
  } finally {
    await relay.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

async function connect(
  relay: Relay,
  taps?: OnPathTap[],
  via = ['127.0.0.2'],
): Promise<BraidClient> {
  const c = await BraidClient.connect({
    invite: relay.invites[0]!.invite,
    via,
    logger: quiet,
    ...(taps === undefined
      ? {}
      : {
          wrapSubflow: (s) => {
            const { wrapped, tap } = tapSubflow(s, 0);
            taps.push(tap);
            return wrapped;
          },
        }),
  });
  if (c.kind !== 'braid') throw new Error('expected a Braid association');
  return c.client;
}

async function halfOpen(count: number): Promise<string> {
  return withRelay(async (relay) => {
    const control = (relay.listener as unknown as { control: ControlServer }).control;
    const sockets: net.Socket[] = [];
    // Spread over addresses so that the global cap, not only the per-address one, is hit.
    const perAddress = 60;
    let opened = 0;
    for (let i = 0; i < count; i++) {
      const from = `127.0.${10 + Math.floor(i / perAddress / 250)}.${1 + (Math.floor(i / perAddress) % 250)}`;
      const s = net.connect({ host: '127.0.0.1', port: relay.listener.port, localAddress: from });
      s.on('error', () => undefined);
      // The first bytes of a ClientHello, then nothing: a half-open TLS handshake.
      s.once('connect', () => {
        opened++;
        s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
      });
      sockets.push(s);
      if (i % 500 === 499) await sleep(20);
    }
    const t0 = performance.now();
    while (opened + control.stats.refusedOverCap < count && performance.now() - t0 < 20_000)
      await sleep(50);
    const pending = control.stats.pending;
    // A legitimate client during the flood (from an address the flood does not use).
    const t = performance.now();
    const client = await connect(relay, undefined, ['127.0.0.2']).catch((e: Error) => e);
    const connectMs = Math.round(performance.now() - t);
    let echo = 'no association';
    if (!(client instanceof Error)) {
      const r = await echoTransfer(client, 1_000_000);
      echo = r.receivedSha256 === r.sentSha256 ? 'echo intact' : 'echo CORRUPT';
      client.close();
    }
    for (const s of sockets) s.destroy();
    return `${count} connections: ${pending} pending (cap 1024), ${control.stats.refusedOverCap} refused over the cap; legitimate client ${client instanceof Error ? `failed: ${client.message}` : `associated in ${connectMs} ms, ${echo}`}`;
  });
}

async function manySessions(count: number): Promise<string> {
  return withRelay(async (relay) => {
    const client = await connect(relay, undefined, ['127.0.0.2', '127.0.0.3']);
    const t = performance.now();
    const results = await Promise.all(
      Array.from({ length: count }, () => echoTransfer(client, 20_000)),
    );
    const bad = results.filter((r) => r.receivedSha256 !== r.sentSha256).length;
    const ms = Math.round(performance.now() - t);
    client.close();
    return `${count} concurrent echo sessions of 20 kB: all done in ${ms} ms, ${bad} corrupt`;
  });
}

async function noAck(seconds: number): Promise<string> {
  return withRelay(async (relay) => {
    const taps: OnPathTap[] = [];
    const client = await connect(relay, taps);
    const stream = client.openStream({ target: `source:${seconds * 1000}` });
    stream.on('error', () => undefined);
    // From now on nothing reaches the client, so it acknowledges nothing.
    for (const tap of taps) tap.inbound = () => [];
    const server = [...relay.listener.associations.values()][0]!;
    let maxInFlight = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000 + 2000) {
      for (const p of server.paths.values())
        maxInFlight = Math.max(maxInFlight, p.recovery.bytesInFlight);
      await sleep(100);
    }
    const state = server.state;
    client.close();
    return `relay sending for ${seconds} s to a client that acknowledges nothing: largest bytes in flight ${Math.round(maxInFlight / 1024)} KiB, association ${state}`;
  });
}

async function reorderGap(sessions: number): Promise<string> {
  return withRelay(async (relay) => {
    const client = await connect(relay);
    const assoc = client.association;
    const path = [...assoc.paths.values()][0]!;
    const sendNow = (assoc as unknown as { sendNow(p: Path, f: Frame[]): void }).sendNow.bind(
      assoc,
    );
    const window = assoc.config.sessionWindow;
    const chunk = Buffer.alloc(4096, 7);
    const server = [...relay.listener.associations.values()][0]!;
    for (let s = 0; s < sessions; s++) {
      const stream = client.openStream({ target: 'sink' });
      stream.on('error', () => undefined);
      stream.write(Buffer.alloc(1)); // OPEN and byte 0 go out normally
      await sleep(20);
      const id = stream.sessionId;
      // Bytes 1..4095 never come; everything after them up to the window does.
      for (let offset = 4096; offset + chunk.length <= window; offset += chunk.length) {
        sendNow(path, [{ type: 'stream', sessionId: id, offset, fin: false, data: chunk }]);
        if (offset % (1024 * 1024) === 0) await sleep(1);
      }
    }
    await sleep(1500);
    const serverSessions = server.sessions.size;
    client.close();
    return `${sessions} sessions, each with a 4 KiB gap and its ${window / MB} MiB window filled behind it: relay holds ${serverSessions} sessions (bound by design: window x sessions per association, up to 16 MiB x 512 per client)`;
  });
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { 'bound-mb': { type: 'string', default: '1024' } },
    allowPositionals: true,
  });
  const bound = Number(values['bound-mb']);
  const all = ['half-open', 'sessions', 'no-ack', 'gap'];
  const chosen = positionals.length > 0 ? positionals : all;
  const results: Result[] = [];
  for (const name of chosen) {
    const run: Record<string, () => Promise<string>> = {
      'half-open': () => halfOpen(10_000),
      sessions: () => manySessions(1000),
      'no-ack': () => noAck(8),
      gap: () => reorderGap(8),
    };
    const body = run[name];
    if (body === undefined) throw new Error(`unknown scenario ${name} (${all.join(', ')})`);
    process.stderr.write(`running ${name}...\n`);
    results.push(await measure(name, body));
    await sleep(500);
  }
  console.log('| scenario | peak RSS MB | RSS growth MB | event-loop delay p99 / max ms | notes |');
  console.log('|---|---:|---:|---:|---|');
  for (const r of results)
    console.log(
      `| ${r.scenario} | ${r.peakRssMb} | ${r.rssGrowthMb} | ${r.eldP99Ms} / ${r.eldMaxMs} | ${r.notes} |`,
    );
  const peak = Math.max(...results.map((r) => r.peakRssMb));
  console.log(
    `peak RSS ${peak} MB against the stated bound of ${bound} MB: ${peak <= bound ? 'within' : 'OVER'}`,
  );
  process.exitCode = peak <= bound ? 0 : 1;
}

await main();
