/**
 * The demo's second part (issue 6 item 7): the relay reached by unmodified programs
 * through the local SOCKS5 proxy, over loopback "uplinks" with user-space impairment
 * (core/host/demo-link.ts: delay, jitter, loss; no root). Two separate processes run
 * at once: a bulk download (SOCKS CONNECT, HTTP from a local web server) and a call
 * (SOCKS UDP ASSOCIATE, 50 x 200-byte messages a second, echoed back by a local UDP
 * server; a reply after 150 ms is late, none after 1 s is lost). The proxy tells them
 * apart by their owner process and applies each one's rule (the call's UDP goes
 * unreliable-ordered). A live table, once a second, shows per uplink the RTT,
 * jitter, loss and throughput the association measures, and per flow its semantics,
 * bytes and messages: redrawn in place on a terminal, one line per second otherwise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DEMO_UPLINKS } from '../host/demo.js';
import { demoLink } from '../host/demo-link.js';
import { countersOf, LinkMetrics } from '../host/link-metrics.js';
import { RelayOutbound } from '../proxy/relay-outbound.js';
import { defaultRule, RuleBook } from '../proxy/rules.js';
import { SocksServer, type ProxiedConnection } from '../proxy/socks-server.js';
import type { TransportKind } from '../wire/frame.js';
import { systemClock, systemRandom } from '../util/clock.js';
import type { Logger } from '../util/log.js';

/**
 * The bulk app: SOCKS5 CONNECT (RFC 1928), an HTTP GET of an endless body, its byte
 * count on stdout four times a second; it stops when its stdin ends. Plain Node, so
 * that it stands for any program.
 */
const DOWNLOAD = `
import net from 'node:net';
const [proxyPort, webPort] = process.argv.slice(2).map(Number);
const s = net.connect(proxyPort, '127.0.0.1');
s.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, webPort >> 8, webPort & 255]));
let head = Buffer.alloc(0);
let bytes = 0;
const report = (extra = {}) => console.log(JSON.stringify({ pid: process.pid, bytes, ...extra }));
s.on('data', (d) => {
  if (head.length < 12) {
    head = Buffer.concat([head, d]);
    if (head.length < 12) return;
    if (head[3] !== 0) { report({ error: 'SOCKS reply ' + head[3] }); process.exit(1); }
    s.write('GET /stream HTTP/1.0\\r\\n\\r\\n');
    bytes += head.length - 12;
    return;
  }
  bytes += d.length;
});
s.on('error', (e) => { report({ error: e.message }); process.exit(1); });
s.on('end', () => { report({ error: 'the server ended the download' }); process.exit(1); });
setInterval(report, 250);
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => { report(); process.exit(0); });
`;

/**
 * The call: SOCKS5 UDP ASSOCIATE, then RATE messages of SIZE bytes a second to the
 * echo server, each with its sequence number and send time; counts replies on time,
 * late (> 150 ms round trip) and lost (none after 1 s).
 */
const CALL = `
import net from 'node:net';
import dgram from 'node:dgram';
const [proxyPort, echoPort, rate, size] = process.argv.slice(2).map(Number);
const LATE_MS = 150, LOST_MS = 1000;
const udp = dgram.createSocket('udp4');
udp.bind(0, '127.0.0.1');
const s = net.connect(proxyPort, '127.0.0.1');
let head = Buffer.alloc(0);
let stage = 'method';
let relay;
const st = { pid: process.pid, sent: 0, ok: 0, late: 0, lost: 0, bytesUp: 0, bytesDown: 0, rttMs: 0 };
const pending = new Map();
const report = (extra = {}) => console.log(JSON.stringify({ ...st, ...extra }));
s.write(Buffer.from([5, 1, 0]));
s.on('data', (d) => {
  head = Buffer.concat([head, d]);
  if (stage === 'method' && head.length >= 2) {
    head = head.subarray(2);
    stage = 'reply';
    s.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
  }
  if (stage === 'reply' && head.length >= 10) {
    if (head[1] !== 0) { report({ error: 'SOCKS reply ' + head[1] }); process.exit(1); }
    relay = { address: head.subarray(4, 8).join('.'), port: head.readUInt16BE(8) };
    stage = 'open';
    setInterval(sendOne, 1000 / rate);
  }
});
s.on('error', (e) => { report({ error: e.message }); process.exit(1); });
s.on('end', () => { report({ error: 'the proxy ended the association' }); process.exit(1); });
const header = Buffer.from([0, 0, 0, 1, 127, 0, 0, 1, echoPort >> 8, echoPort & 255]);
function sendOne() {
  const body = Buffer.alloc(size);
  body.writeUInt32BE(st.sent, 0);
  pending.set(st.sent, performance.now());
  st.sent++;
  st.bytesUp += size;
  udp.send(Buffer.concat([header, body]), relay.port, relay.address);
}
udp.on('message', (m) => {
  if (m.length < 14) return;
  const seq = m.readUInt32BE(10);
  const at = pending.get(seq);
  if (at === undefined) return; // already counted as lost, or a duplicate
  pending.delete(seq);
  const rtt = performance.now() - at;
  st.bytesDown += m.length - 10;
  st.rttMs = st.rttMs === 0 ? rtt : st.rttMs + (rtt - st.rttMs) / 8;
  if (rtt > LATE_MS) st.late++; else st.ok++;
});
setInterval(() => {
  const now = performance.now();
  for (const [seq, at] of pending) if (now - at > LOST_MS) { pending.delete(seq); st.lost++; }
  report();
}, 250);
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => { report(); process.exit(0); });
`;

interface AppReport {
  pid?: number;
  bytes?: number;
  sent?: number;
  ok?: number;
  late?: number;
  lost?: number;
  bytesUp?: number;
  bytesDown?: number;
  rttMs?: number;
  error?: string;
}

interface RunningApp {
  name: string;
  child: ChildProcess;
  last: AppReport;
  exited: Promise<void>;
}

/** Runs `script` under sh (not exec'd), so the app is the script, not the demo that started it. */
function startApp(name: string, script: string, args: string[], logger: Logger): RunningApp {
  const line = [process.execPath, script, ...args].map((a) => `'${a}'`).join(' ') + '; exit $?';
  const child = spawn('sh', ['-c', line], { stdio: ['pipe', 'pipe', 'inherit'] });
  const app: RunningApp = {
    name,
    child,
    last: {},
    exited: once(child, 'exit').then(() => undefined),
  };
  createInterface({ input: child.stdout }).on('line', (text) => {
    try {
      app.last = JSON.parse(text) as AppReport;
    } catch (err) {
      logger.warn('demo app printed something that is not a report', {
        app: name,
        line: text.slice(0, 200),
        error: (err as Error).message,
      });
    }
  });
  return app;
}

export interface ProxyDemoOptions {
  invite: string;
  via: string[];
  transports: TransportKind[];
  /** How long both apps run (ms). */
  durationMs: number;
  /** Call messages per second and their size (default 50 x 200 B). */
  messageRate?: number;
  messageBytes?: number;
  /** Redraw the table in place (ANSI) instead of one line per second. */
  tty: boolean;
  logger: Logger;
  write: (text: string) => void;
}

export interface ProxyDemoResult {
  ok: boolean;
  download: AppReport;
  call: AppReport;
}

const mb = (bytes: number): string =>
  bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
const ms = (v: number | null): string => (v === null ? '-' : `${v.toFixed(1)} ms`);
const pct = (v: number | null): string => (v === null ? '-' : `${(v * 100).toFixed(1)}%`);

export async function runProxyDemo(options: ProxyDemoOptions): Promise<ProxyDemoResult> {
  const rate = options.messageRate ?? 50;
  const size = options.messageBytes ?? 200;
  // The far side: an endless HTTP body and a UDP echo, both on this machine.
  const block = randomBytes(64 * 1024);
  const web = http.createServer((_req, res) => {
    const pump = (): void => {
      while (!res.destroyed && res.write(block));
    };
    res.on('drain', pump);
    pump();
  });
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  const webPort = (web.address() as AddressInfo).port;
  const echo = dgram.createSocket('udp4');
  echo.on('message', (m, rinfo) => echo.send(m, rinfo.port, rinfo.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  const echoPort = echo.address().port;

  const dir = mkdtempSync(join(tmpdir(), 'braid-demo-apps-'));
  const downloadScript = join(dir, 'download.mjs');
  const callScript = join(dir, 'video-call.mjs');
  writeFileSync(downloadScript, DOWNLOAD);
  writeFileSync(callScript, CALL);
  const rules = new RuleBook({ logger: options.logger });
  // The call gets a call's rule (UDP unreliable-ordered, jitter first). Its app id is
  // what the proxy will read: the interpreter's executable and the script.
  rules.set(defaultRule(`${process.execPath} ${callScript}`, 'video-call.mjs', 'call'));
  const uplinkOf = (address: string): (typeof DEMO_UPLINKS)[number] | undefined =>
    DEMO_UPLINKS[options.via.indexOf(address)];
  const outbound = await RelayOutbound.open({
    invite: options.invite,
    via: options.via,
    transports: options.transports,
    logger: options.logger,
    wrapSubflow: (subflow, plan) => {
      const uplink = uplinkOf(plan.localAddress);
      return uplink === undefined
        ? subflow
        : demoLink(subflow, uplink.link, systemClock, systemRandom);
    },
  });
  const proxy = await SocksServer.listen({
    port: 0,
    outbound,
    rules,
    logger: options.logger,
    // macOS has no /proc/net/tcp to tell local users apart; the demo's apps are ours.
    ...(process.platform === 'linux' ? {} : { allowUids: 'any' as const }),
  });
  const flows: ProxiedConnection[] = [];
  proxy.on('connection', (c) => flows.push(c));
  const metrics = new Map<number, LinkMetrics>();
  const apps: RunningApp[] = [];
  let drawn = 0;
  const started = performance.now();

  const uplinkRows = (): string[][] => {
    const rows: string[][] = [];
    for (const [id, path] of outbound.current?.paths ?? []) {
      let m = metrics.get(id);
      if (m === undefined) {
        m = new LinkMetrics({ clock: systemClock, lossWindowMs: 5000 });
        metrics.set(id, m);
      }
      m.update(countersOf(path));
      const uplink = uplinkOf(path.subflow.localAddress);
      rows.push([
        uplink?.name ?? path.subflow.localAddress,
        `${path.subflow.localAddress}/${path.kind}`,
        ms(m.latencyMs),
        ms(m.jitterMs),
        pct(m.lossRate),
        (((m.upBps + m.downBps) * 8) / 1e6).toFixed(1),
      ]);
    }
    return rows;
  };
  const flowRows = (): string[][] =>
    apps.map((app) => {
      const conn = flows.find((c) => app.last.pid !== undefined && c.app.ownerPid === app.last.pid);
      const rule = conn === undefined ? undefined : rules.ruleFor(conn.app);
      const udp = conn?.command === 'udp-associate';
      const r = app.last;
      return [
        conn?.app.name ?? app.name,
        String(r.pid ?? '?'),
        conn === undefined ? '-' : udp ? rule!.udpSemantics : 'reliable-ordered',
        conn?.via ?? '-',
        mb(udp ? (r.bytesUp ?? 0) + (r.bytesDown ?? 0) : (r.bytes ?? 0)),
        udp
          ? `${r.ok ?? 0} ok, ${r.late ?? 0} late, ${r.lost ?? 0} lost of ${r.sent ?? 0}${r.rttMs ? ` (rtt ${r.rttMs.toFixed(0)} ms)` : ''}`
          : '-',
      ];
    });
  const table = (head: string[], rows: string[][]): string[] => {
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]): string =>
      '  ' + cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    return [line(head), ...rows.map(line)];
  };
  const draw = (): void => {
    const t = ((performance.now() - started) / 1000).toFixed(0);
    const uplinks = uplinkRows();
    const flowsNow = flowRows();
    if (options.tty) {
      const lines = [
        `live, ${t} s of ${(options.durationMs / 1000).toFixed(0)} s`,
        ...table(['uplink', 'path', 'RTT', 'jitter', 'loss', 'Mbit/s'], uplinks),
        ...table(['app', 'pid', 'semantics', 'via', 'bytes', 'messages'], flowsNow),
      ];
      // Up over the previous table, clear to the end of the screen, draw again.
      options.write((drawn > 0 ? `\x1b[${drawn}A\x1b[J` : '') + lines.join('\n') + '\n');
      drawn = lines.length;
    } else {
      const u = uplinks
        .map((r) => `${r[1]} rtt ${r[2]} jitter ${r[3]} loss ${r[4]} ${r[5]} Mbit/s`)
        .join('; ');
      const f = flowsNow
        .map((r) => `${r[0]} ${r[2]} ${r[4]}${r[5] === '-' ? '' : ` ${r[5]}`}`)
        .join('; ');
      options.write(`[${t}s] uplinks: ${u} | flows: ${f}\n`);
    }
  };

  try {
    options.write(
      `\nthrough the local SOCKS5 proxy on 127.0.0.1:${proxy.port}, two programs at once: a bulk download (TCP) and a call (UDP, ${rate} x ${size} B messages/s, echoed), over ${options.via.length} impaired loopback uplinks:\n`,
    );
    apps.push(
      startApp(
        'download.mjs',
        downloadScript,
        [String(proxy.port), String(webPort)],
        options.logger,
      ),
      startApp(
        'video-call.mjs',
        callScript,
        [String(proxy.port), String(echoPort), String(rate), String(size)],
        options.logger,
      ),
    );
    const ticker = setInterval(draw, 1000);
    await Promise.race([
      new Promise((r) => setTimeout(r, options.durationMs)),
      // An app that fails ends the demo early (its report says why).
      Promise.race(apps.map((a) => a.exited)),
    ]);
    clearInterval(ticker);
    for (const app of apps) app.child.stdin?.end();
    await Promise.race([
      Promise.all(apps.map((a) => a.exited)),
      new Promise((r) => setTimeout(r, 3000)),
    ]);
    draw();
    const [download, call] = [apps[0]!.last, apps[1]!.last];
    const pids = new Set(flows.map((c) => c.app.ownerPid));
    const ok =
      download.error === undefined &&
      call.error === undefined &&
      (download.bytes ?? 0) > 0 &&
      (call.ok ?? 0) + (call.late ?? 0) > 0 &&
      pids.has(download.pid) &&
      pids.has(call.pid);
    for (const [name, r] of [
      ['download', download],
      ['call', call],
    ] as const)
      if (r.error !== undefined) options.write(`  ${name} failed: ${r.error}\n`);
    return { ok, download, call };
  } finally {
    for (const app of apps) if (app.child.exitCode === null) app.child.kill('SIGKILL');
    await proxy.close();
    web.closeAllConnections();
    web.close();
    echo.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
