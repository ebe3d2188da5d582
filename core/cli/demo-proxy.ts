/**
 * The demo's second part (issue 6 item 7): the same relay reached by unmodified
 * programs through the local SOCKS5 proxy. Two separate processes fetch a file from
 * a local web server through the proxy; the proxy tells them apart by their owner
 * process and applies each one's rule — the first goes through the relay, the second
 * is set to bypass and goes straight out.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RelayOutbound } from '../proxy/relay-outbound.js';
import { RuleBook } from '../proxy/rules.js';
import { SocksServer, type ProxiedConnection } from '../proxy/socks-server.js';
import type { TransportKind } from '../wire/frame.js';
import type { Logger } from '../util/log.js';

/** A fetch through SOCKS5 (RFC 1928), written plainly so that it stands for any app. */
const FETCH = `
import net from 'node:net';
const [proxyPort, webPort] = process.argv.slice(2).map(Number);
const started = performance.now();
const s = net.connect(proxyPort, '127.0.0.1');
s.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, webPort >> 8, webPort & 255]));
let head = Buffer.alloc(0);
let bytes = 0;
s.on('data', (d) => {
  if (head.length < 12) {
    head = Buffer.concat([head, d]);
    if (head.length < 12) return;
    if (head[3] !== 0) { console.log(JSON.stringify({ error: 'SOCKS reply ' + head[3] })); process.exit(1); }
    s.write('GET /file HTTP/1.0\\r\\n\\r\\n');
    bytes += head.length - 12;
    return;
  }
  bytes += d.length;
});
s.on('end', () => console.log(JSON.stringify({ pid: process.pid, bytes, ms: performance.now() - started })));
s.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
`;

interface FetchReport {
  pid?: number;
  bytes?: number;
  ms?: number;
  error?: string;
}

/** Runs `script` under sh (not exec'd), so the app is the script, not the demo that started it. */
function runApp(script: string, args: string[]): Promise<FetchReport> {
  const line = [process.execPath, script, ...args].map((a) => `'${a}'`).join(' ') + '; exit $?';
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', line], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as FetchReport);
      } catch (err) {
        resolve({ error: `no report (${(err as Error).message})` });
      }
    });
  });
}

export async function runProxyDemo(options: {
  invite: string;
  via: string[];
  transports: TransportKind[];
  bytes: number;
  logger: Logger;
  write: (line: string) => void;
}): Promise<boolean> {
  const body = randomBytes(options.bytes);
  const web = http.createServer((_req, res) => {
    res.setHeader('content-length', body.length);
    res.end(body);
  });
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  const webPort = (web.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'braid-demo-apps-'));
  const apps = ['photo-upload.mjs', 'video-call.mjs'].map((name) => join(dir, name));
  for (const app of apps) writeFileSync(app, FETCH);
  const rules = new RuleBook({ logger: options.logger });
  const outbound = await RelayOutbound.open({
    invite: options.invite,
    via: options.via,
    transports: options.transports,
    logger: options.logger,
  });
  const proxy = await SocksServer.listen({ port: 0, outbound, rules, logger: options.logger });
  const seen: ProxiedConnection[] = [];
  proxy.on('connection', (c) => seen.push(c));
  try {
    options.write(
      `\nthrough the local SOCKS5 proxy on 127.0.0.1:${proxy.port}, two programs each fetch ${(options.bytes / 1e6).toFixed(0)} MB from a local web server:\n`,
    );
    // The first run identifies the second app; the user's rule then bypasses it.
    await runApp(apps[1]!, [String(proxy.port), String(webPort)]);
    const call = seen.at(-1)?.app;
    if (call !== undefined) rules.set({ ...rules.ruleFor(call), bypass: true });
    seen.length = 0;
    const reports = await Promise.all(
      apps.map((a) => runApp(a, [String(proxy.port), String(webPort)])),
    );
    options.write(
      `${'app'.padEnd(18)} ${'pid'.padStart(7)}  ${'rule'.padEnd(34)} ${'via'.padEnd(7)} ${'MB'.padStart(5)} ${'Mbit/s'.padStart(8)}\n`,
    );
    let ok = true;
    for (const report of reports) {
      const conn = seen.find((c) => c.app.ownerPid === report.pid);
      if (report.error !== undefined || conn === undefined || report.bytes === undefined) {
        ok = false;
        options.write(`  fetch failed: ${report.error ?? 'connection not seen by the proxy'}\n`);
        continue;
      }
      const rule = rules.ruleFor(conn.app);
      // The count includes the HTTP response header, so at least the body must have come.
      ok &&= report.bytes >= body.length;
      options.write(
        `${conn.app.name.padEnd(18)} ${String(conn.app.pid ?? '?').padStart(7)}  ${(rule.bypass ? 'bypass' : rule.priorities.join('>')).padEnd(34)} ${conn.via.padEnd(7)} ${(report.bytes / 1e6).toFixed(1).padStart(5)} ${((report.bytes * 8) / 1000 / (report.ms ?? 1)).toFixed(1).padStart(8)}\n`,
      );
    }
    return ok;
  } finally {
    await proxy.close();
    web.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
