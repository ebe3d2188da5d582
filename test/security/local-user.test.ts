/**
 * SECURITY.md, threat 3: another user (or a program running as another user) on the
 * laptop reaching the local SOCKS5 proxy or the dashboard server, both on 127.0.0.1.
 * The intruder is a real child process that drops to `nobody` with process.setuid
 * (the tests run as root on CI; elsewhere they are skipped), while the owner's own
 * transfer through the proxy keeps its SHA-256.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BraidHost } from '../../core/host/host.js';
import { startDashboardServer, type DashboardServer } from '../../core/host/dashboard-server.js';
import { BypassOutbound } from '../../core/proxy/outbound.js';
import { RuleBook } from '../../core/proxy/rules.js';
import { SocksServer } from '../../core/proxy/socks-server.js';
import { createLogger } from '../../core/util/log.js';
import { socksRequest, tcpEchoServer } from '../unit/proxy/socks-client.js';

const quiet = createLogger({ level: 'silent' });
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * What the intruder does, as `nobody`: a SOCKS5 greeting offering no authentication
 * then CONNECT, HTTP requests to the dashboard without the token, and a WebSocket
 * upgrade without it. Plain Node, no imports from the repository (nobody may not read it).
 */
const INTRUDER = `
import net from 'node:net';
import http from 'node:http';
process.setgid(65534);
process.setuid(65534);
const [socksPort, echoPort, dashPort] = process.argv.slice(2).map(Number);
const out = { uid: process.getuid() };
function socks(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    let stage = 'greeting';
    s.on('error', (e) => resolve({ error: e.code, got: got.toString('hex'), stage }));
    s.on('connect', () => s.write(Buffer.from([5, 1, 0])));
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (stage === 'greeting' && got.length >= 2) {
        if (got[1] !== 0) return;
        stage = 'request';
        s.write(Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, echoPort >> 8, echoPort & 255]));
      } else if (stage === 'request' && got.length >= 12) {
        stage = 'data';
        s.write('intruder');
      }
    });
    s.on('close', () => resolve({ got: got.toString('hex'), stage }));
    setTimeout(() => s.destroy(), 1500);
  });
}
function get(path, headers = {}) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: dashPort, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', (e) => resolve(e.code));
    req.end();
  });
}
out.socks = await socks(socksPort);
out.http = {
  root: await get('/'),
  guess: await get('/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/'),
  asset: await get('/assets/index.js'),
  upgrade: await get('/ws', { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' }),
};
console.log(JSON.stringify(out));
`;

interface IntruderReport {
  uid: number;
  socks: { got: string; stage: string; error?: string };
  http: Record<string, number | string>;
}

describe.skipIf(!isRoot)('another local user against the proxy and the dashboard', () => {
  let dir: string;
  let script: string;
  let echo: Awaited<ReturnType<typeof tcpEchoServer>>;
  let guarded: SocksServer;
  let open: SocksServer;
  let host: BraidHost;
  let dashboard: DashboardServer;
  let echoAccepted = 0;
  const auth = { username: 'owner', password: randomBytes(12).toString('base64url') };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'braid-intruder-'));
    chmodSync(dir, 0o755);
    script = join(dir, 'intruder.mjs');
    writeFileSync(script, INTRUDER, { mode: 0o644 });
    echo = await tcpEchoServer();
    echo.server.on('connection', () => echoAccepted++);
    const common = {
      port: 0,
      outbound: new BypassOutbound(10_000, quiet),
      rules: new RuleBook({ logger: quiet }),
      logger: quiet,
    };
    guarded = await SocksServer.listen({ ...common, auth });
    open = await SocksServer.listen(common);
    const staticDir = join(dir, 'static');
    mkdirSync(staticDir);
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>Braid</title>');
    host = await BraidHost.start({ mode: 'demo', demoUplinks: 1, logger: quiet });
    dashboard = await startDashboardServer({ engine: host, staticDir, logger: quiet });
  }, 60_000);
  afterAll(async () => {
    await dashboard?.close();
    await host?.stop();
    await guarded?.close();
    await open?.close();
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function intrude(socksPort: number): Promise<IntruderReport> {
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        [script, String(socksPort), String(echo.port), String(dashboard.port)],
        { cwd: dir, timeout: 20_000 },
        (err, stdout, stderr) => {
          if (err !== null) reject(new Error(`intruder failed: ${err.message} ${stderr}`));
          else resolve(JSON.parse(stdout) as IntruderReport);
        },
      );
    });
  }

  /** The owner's own traffic through the proxy while the intruder tries. */
  async function ownerTransfer(port: number, withAuth: boolean): Promise<boolean> {
    const { socket, reply } = await socksRequest(
      port,
      1,
      '127.0.0.1',
      echo.port,
      withAuth ? { auth } : {},
    );
    expect(reply).toBe(0);
    const payload = randomBytes(4_000_000);
    const back = createHash('sha256');
    let n = 0;
    const done = new Promise<void>((resolve) =>
      socket.on('data', (c: Buffer) => {
        back.update(c);
        n += c.length;
        if (n === payload.length) resolve();
      }),
    );
    socket.write(payload);
    await done;
    socket.destroy();
    return back.digest('hex') === createHash('sha256').update(payload).digest('hex');
  }

  it('refuses the intruder at a proxy with credentials and at the dashboard without the token; the owner transfer stays intact', async () => {
    const before = echoAccepted;
    const [report, intact] = await Promise.all([
      intrude(guarded.port),
      ownerTransfer(guarded.port, true),
    ]);
    expect(report.uid).toBe(65534);
    // RFC 1928 §3: X'FF' NO ACCEPTABLE METHODS, then the proxy closes.
    expect(report.socks.got).toBe('05ff');
    expect(report.socks.stage).toBe('greeting');
    expect(echoAccepted - before).toBe(1); // the owner's connection only
    for (const [what, status] of Object.entries(report.http)) {
      expect([403, 404], what).toContain(status);
    }
    expect(intact).toBe(true);
  });

  // SECURITY.md, "local users": without --user/--password the proxy serves only its own
  // uid (and root); the intruder's socket is owned by nobody, read from /proc/net/tcp.
  it('refuses another local user at a proxy without credentials', async () => {
    const before = echoAccepted;
    const [report, intact] = await Promise.all([
      intrude(open.port),
      ownerTransfer(open.port, false),
    ]);
    expect(intact).toBe(true);
    expect(report.uid).toBe(65534);
    expect(report.socks.got).toBe('05ff');
    expect(report.socks.stage).toBe('greeting');
    expect(echoAccepted - before).toBe(1);
    expect(open.stats.refusedUsers).toBe(1);
  });

  it('serves another local user that is allowed by uid, and every user with allowUids "any"', async () => {
    const common = {
      port: 0,
      outbound: new BypassOutbound(10_000, quiet),
      rules: new RuleBook({ logger: quiet }),
      logger: quiet,
    };
    for (const allowUids of [[65534], 'any'] as const) {
      const proxy = await SocksServer.listen({ ...common, allowUids });
      try {
        const before = echoAccepted;
        const report = await intrude(proxy.port);
        expect(report.uid).toBe(65534);
        expect(report.socks.got.slice(0, 4)).toBe('0500');
        expect(report.socks.stage).toBe('data');
        expect(echoAccepted - before).toBe(1);
        expect(proxy.stats.refusedUsers).toBe(0);
      } finally {
        await proxy.close();
      }
    }
  });
});
