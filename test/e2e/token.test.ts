import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BraidHost } from '../../core/host/host.js';
import { startDashboardServer, type DashboardServer } from '../../core/host/dashboard-server.js';
import { channelOf } from '../../core/host/contract.js';
import { createLogger } from '../../core/util/log.js';

/** Raw HTTP so that the test controls Host, Origin and the path exactly. */
function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a WebSocket; resolves 'open' or the HTTP status it was refused with. */
function upgrade(url: string, headers: Record<string, string>): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

function invoke(ws: WebSocket, id: number, channel: string, arg: unknown): Promise<unknown> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer): void => {
      const msg = JSON.parse(data.toString('utf8')) as { id?: number; answer?: unknown };
      if (msg.id === id) {
        ws.off('message', onMessage);
        resolve(msg.answer);
      }
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ id, channel, arg }));
  });
}

describe('dashboard server access control (real HTTP and WebSocket on 127.0.0.1)', () => {
  let host: BraidHost;
  let server: DashboardServer;
  let staticDir: string;
  let origin: string;
  let hostHeader: string;

  beforeAll(async () => {
    staticDir = mkdtempSync(join(tmpdir(), 'braid-static-'));
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>Braid</title>');
    const logger = createLogger({ level: 'error' });
    host = await BraidHost.start({ mode: 'demo', demoUplinks: 1, logger });
    server = await startDashboardServer({ engine: host, staticDir, logger });
    origin = `http://127.0.0.1:${server.port}`;
    hostHeader = `127.0.0.1:${server.port}`;
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await host?.stop();
    rmSync(staticDir, { recursive: true, force: true });
  });

  it('listens on 127.0.0.1 only, with a long random token in the URL', () => {
    expect(server.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/[\\w-]{43}/$`));
  });

  it('serves the page with the token, with a strict CSP and no referrer', async () => {
    const res = await get(server.port, `/${server.token}/`);
    expect(res.status).toBe(200);
    expect(res.body).toContain('<title>Braid</title>');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('refuses requests without the right token', async () => {
    const wrong = server.token.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'));
    for (const path of [
      '/',
      '/index.html',
      `/${wrong}/`,
      `/${server.token}`,
      `/${server.token}x/`,
    ]) {
      const res = await get(server.port, path);
      expect(res.status, path).toBe(403);
      expect(res.body).not.toContain('Braid');
    }
  });

  it('refuses a foreign Host header (DNS rebinding) and a foreign Origin', async () => {
    const path = `/${server.token}/`;
    expect((await get(server.port, path, { host: `evil.example:${server.port}` })).status).toBe(
      403,
    );
    expect((await get(server.port, path, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await get(server.port, path, { host: `localhost:${server.port}` })).status).toBe(200);
  });

  it('does not serve files outside the build', async () => {
    const res = await get(server.port, `/${server.token}/..%2f..%2f..%2fetc%2fpasswd`);
    expect(res.status).toBe(404);
  });

  it('refuses the WebSocket upgrade without the token, without or with a foreign Origin', async () => {
    const base = `ws://127.0.0.1:${server.port}`;
    expect(await upgrade(`${base}/ws`, { origin })).toBe(403);
    expect(await upgrade(`${base}/${'A'.repeat(43)}/ws`, { origin })).toBe(403);
    expect(await upgrade(`${base}/${server.token}/ws`, {})).toBe(403);
    expect(await upgrade(`${base}/${server.token}/ws`, { origin: 'http://evil.example' })).toBe(
      403,
    );
    expect(await upgrade(`${base}/${server.token}/ws`, { origin, host: 'evil.example' })).toBe(403);
  });

  it('answers invokes over the WebSocket, validating their arguments against the contract', async () => {
    const ws = await upgrade(`ws://127.0.0.1:${server.port}/${server.token}/ws`, {
      origin,
      host: hostHeader,
    });
    if (typeof ws === 'number') throw new Error(`refused with ${ws}`);
    try {
      const snap = (await invoke(ws, 1, channelOf('getSnapshot'), null)) as {
        type: string;
        value: { uplinks: Array<{ id: string }> };
      };
      expect(snap.type).toBe('success');
      expect(snap.value.uplinks.map((u) => u.id)).toEqual(['wlan0']);

      const bad = await invoke(ws, 2, channelOf('setAppRule'), {
        appId: '/usr/bin/syncthing',
        lossVsThroughput: 7,
      });
      expect(bad).toMatchObject({ type: 'error' });
      expect((bad as { message: string }).message).toContain('lossVsThroughput');
      expect(host.rule('/usr/bin/syncthing')!.lossVsThroughput).toBe(0.2);

      const unknownField = await invoke(ws, 3, channelOf('setAppRule'), {
        appId: '/usr/bin/syncthing',
        bypas: true,
      });
      expect(unknownField).toMatchObject({ type: 'error' });

      const unknownCall = await invoke(ws, 4, 'braid:shutdown', null);
      expect(unknownCall).toMatchObject({ type: 'error' });

      const good = await invoke(ws, 5, channelOf('setAppRule'), {
        appId: '/usr/bin/syncthing',
        lossVsThroughput: 0.25,
      });
      expect(good).toMatchObject({ type: 'success', value: { lossVsThroughput: 0.25 } });
      expect(host.rule('/usr/bin/syncthing')!.lossVsThroughput).toBe(0.25);
    } finally {
      ws.close();
    }
  });
});
