import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SocksServer, type ProxiedConnection } from '../../core/proxy/socks-server.js';
import { BypassOutbound } from '../../core/proxy/outbound.js';
import { DirectOutbound, StaticUplinkChooser } from '../../core/proxy/direct.js';
import { RuleBook } from '../../core/proxy/rules.js';
import { Reply } from '../../core/proxy/socks5-parser.js';
import { createLogger, createMemoryLogger } from '../../core/util/log.js';
import { readAll, socksRequest, tcpEchoServer } from '../unit/proxy/socks-client.js';

const quiet = createLogger({ level: 'error' });

/**
 * A client program: connects through the SOCKS proxy (greeting and CONNECT pipelined),
 * sends its tag, waits for the echo; with a child script given, runs it and waits.
 */
const CLIENT = `
import net from 'node:net';
import { spawn } from 'node:child_process';
const [proxyPort, destPort, tag, child] = process.argv.slice(2);
const s = net.connect(Number(proxyPort), '127.0.0.1');
const port = Number(destPort);
s.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 255]));
let buf = Buffer.alloc(0);
let echoed = false;
s.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  if (echoed) return;
  if (buf.length === 12) {
    if (buf[3] !== 0) { console.error('reply', buf[3]); process.exit(3); }
    s.write(tag);
  } else if (buf.length >= 12 + tag.length) {
    echoed = true;
    if (child === undefined) { s.end(); return; }
    spawn(process.execPath, [child, proxyPort, destPort, tag + '-child'], { stdio: 'inherit' })
      .on('exit', (code) => { s.end(); process.exitCode = code ?? 1; });
  }
});
s.on('error', (e) => { console.error(e.message); process.exit(2); });
`;

/** Runs a command through sh with a command after it, so that sh stays the parent (no exec). */
function runThroughShell(args: string[]): Promise<number | null> {
  const line = args.map((a) => `'${a}'`).join(' ') + '; exit $?';
  return new Promise((resolve) => {
    const p = spawn('sh', ['-c', line], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', resolve);
  });
}

describe.skipIf(process.platform !== 'linux')(
  'app identification of proxied connections (Linux /proc)',
  () => {
    let dir: string;
    let echo: Awaited<ReturnType<typeof tcpEchoServer>>;
    let proxy: SocksServer;
    const seen: ProxiedConnection[] = [];
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'braid-apps-'));
      for (const name of ['app-a.mjs', 'app-b.mjs', 'helper-child.mjs'])
        writeFileSync(join(dir, name), CLIENT);
      echo = await tcpEchoServer();
      proxy = await SocksServer.listen({
        port: 0,
        outbound: new BypassOutbound(10_000, quiet),
        rules: new RuleBook({ logger: quiet }),
        logger: quiet,
      });
      proxy.on('connection', (c) => seen.push(c));
    });
    afterAll(async () => {
      await proxy.close();
      await echo.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('tells two programs apart and counts a child process as its parent app', async () => {
      const a = join(dir, 'app-a.mjs');
      const b = join(dir, 'app-b.mjs');
      const child = join(dir, 'helper-child.mjs');
      expect(
        await runThroughShell([
          process.execPath,
          a,
          String(proxy.port),
          String(echo.port),
          'A',
          child,
        ]),
      ).toBe(0);
      expect(
        await runThroughShell([process.execPath, b, String(proxy.port), String(echo.port), 'B']),
      ).toBe(0);
      expect(seen).toHaveLength(3);
      const [fromA, fromChild, fromB] = seen.map((c) => c.app);
      expect(fromA!.appId).toBe(`${process.execPath} ${a}`);
      expect(fromA!.name).toBe('app-a.mjs');
      // The child's socket is the child's, but the app is its parent's.
      expect(fromChild!.appId).toBe(fromA!.appId);
      expect(fromChild!.ownerPid).not.toBe(fromChild!.pid);
      expect(fromChild!.pid).toBe(fromA!.pid);
      expect(fromB!.appId).toBe(`${process.execPath} ${b}`);
      expect(fromB!.pid).not.toBe(fromA!.pid);
    });
  },
);

describe('direct mode (no relay): the best uplink, and off a failed one at once', () => {
  let echo: Awaited<ReturnType<typeof tcpEchoServer>>;
  let proxy: SocksServer;
  let direct: DirectOutbound;
  const memory = createMemoryLogger('warn');
  beforeAll(async () => {
    echo = await tcpEchoServer();
    direct = new DirectOutbound({
      // 192.0.2.1 (TEST-NET-1) is on no interface: binding to it fails with
      // EADDRNOTAVAIL, as when an uplink's address vanished.
      chooser: new StaticUplinkChooser([
        { name: 'vanished', address: '192.0.2.1' },
        { name: 'lo-b', address: '127.0.0.2' },
      ]),
      logger: memory.logger,
    });
    proxy = await SocksServer.listen({ port: 0, outbound: direct, logger: quiet });
  });
  afterAll(async () => {
    await proxy.close();
    await echo.close();
  });

  it('retries a connection whose uplink fails on the next one, and new connections skip it', async () => {
    const vias: string[] = [];
    proxy.on('connection', (c) => vias.push(c.via));
    for (const text of ['one', 'two']) {
      const { socket, reply, bound } = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
      expect(reply).toBe(Reply.succeeded);
      expect(bound.host).toBe('127.0.0.2');
      socket.end(text);
      expect((await readAll(socket)).toString()).toBe(`${text}bye`);
    }
    expect(vias).toEqual(['direct:lo-b', 'direct:lo-b']);
    expect(echo.peers).toEqual(['127.0.0.2', '127.0.0.2']);
    expect([...direct.failed().keys()]).toEqual(['vanished']);
    // Marked once: the second connection did not try the failed uplink again.
    expect(
      memory.lines.filter((l) => l.msg === 'uplink failed; new connections avoid it'),
    ).toHaveLength(1);
  });
});
