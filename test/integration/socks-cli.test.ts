import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socksRequest, readAll } from '../unit/proxy/socks-client.js';

const main = join(import.meta.dirname, '../../core/cli/main.ts');
const hasCurl = spawnSync('curl', ['--version']).status === 0;

function braid(args: string[]): {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  waitFor: (re: RegExp) => Promise<RegExpExecArray>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], {
    env: { ...process.env, BRAID_LOG: 'warn' },
  });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      const m = w.re.exec(line);
      if (m !== null) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const waitFor = (re: RegExp): Promise<RegExpExecArray> => {
    for (const line of lines) {
      const m = re.exec(line);
      if (m !== null) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      waiters.push({ re, resolve });
      child.once('exit', (code) =>
        reject(new Error(`braid ${args[0]} exited (${code}) before ${re}: ${stderr}`)),
      );
    });
  };
  return { child, lines, waitFor };
}

describe('braid relay and braid proxy as processes', () => {
  let dir: string;
  let relay: ReturnType<typeof braid>;
  let proxy: ReturnType<typeof braid>;
  let proxyPort: number;
  let web: http.Server;
  let webPort: number;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'braid-cli-proxy-'));
    web = http.createServer((req, res) => res.end(`hello from ${req.url}`));
    web.listen(0, '127.0.0.1');
    await once(web, 'listening');
    webPort = (web.address() as { port: number }).port;
    relay = braid([
      'relay',
      '--state',
      join(dir, 'relay'),
      '--port',
      '0',
      '--allow',
      '127.0.0.0/8',
      '--grace',
      '20',
    ]);
    const invite = (await relay.waitFor(/^invite default: (braid:\/\/\S+)$/))[1]!;
    proxy = braid([
      'proxy',
      '--invite',
      invite,
      '--via',
      '127.0.0.2,127.0.0.3',
      '--port',
      '0',
      '--rules',
      join(dir, 'rules.json'),
    ]);
    proxyPort = Number((await proxy.waitFor(/^SOCKS5 proxy on 127\.0\.0\.1:(\d+)/))[1]);
  });
  afterAll(async () => {
    for (const p of [proxy, relay]) {
      if (p?.child.exitCode === null) {
        p.child.kill('SIGKILL');
        await once(p.child, 'exit');
      }
    }
    web.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!hasCurl)(
    'carries curl through the proxy and the relay (names resolved at the relay)',
    async () => {
      const r = await new Promise<{ status: number | null; out: string }>((resolve) => {
        const c = spawn('curl', [
          '-sS',
          '--max-time',
          '20',
          '--socks5-hostname',
          `127.0.0.1:${proxyPort}`,
          `http://localhost:${webPort}/one`,
        ]);
        let out = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr.on('data', (d: Buffer) => (out += d.toString()));
        c.on('exit', (status) => resolve({ status, out }));
      });
      expect(r).toEqual({ status: 0, out: 'hello from /one' });
    },
  );

  it('drains on SIGTERM: an open connection finishes, then the relay exits', async () => {
    const { socket, reply } = await socksRequest(proxyPort, 1, '127.0.0.1', webPort);
    expect(reply).toBe(0);
    relay.child.kill('SIGTERM');
    await relay.waitFor(/^relay draining/);
    expect(relay.child.exitCode).toBeNull();
    const body = readAll(socket);
    socket.end(`GET /late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect((await body).toString()).toContain('hello from /late');
    const [code] = (await once(relay.child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(relay.lines).toContain('relay stopped');
  });
});
