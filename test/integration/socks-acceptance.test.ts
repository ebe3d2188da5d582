import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Association } from '../../core/session/association.js';
import type { SocksServer } from '../../core/proxy/socks-server.js';
import { startProxyToRelay, useRelay } from '../support/relay-fixture.js';
import { readAll, socksRequest, tcpEchoServer } from '../unit/proxy/socks-client.js';
import { Reply } from '../../core/proxy/socks5-parser.js';

/** Runs curl through the proxy; resolves with the SHA-256 and length of what it fetched. */
function curlThrough(proxyPort: number, url: string): Promise<{ sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn('curl', ['-s', '--fail', '--socks5-hostname', `127.0.0.1:${proxyPort}`, url]);
    const hash = createHash('sha256');
    let bytes = 0;
    c.stdout.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
    });
    c.on('error', reject);
    c.on('exit', (code) =>
      code === 0
        ? resolve({ sha: hash.digest('hex'), bytes })
        : reject(new Error(`curl exited ${code}`)),
    );
  });
}

/**
 * The proxy issue's acceptance list, end to end with real processes and sockets:
 * curl through the SOCKS5 proxy and the relay to an HTTP server, striped; bypass
 * touching no association; 200 concurrent proxied connections.
 */
describe('SOCKS5 acceptance: curl through Braid, bypass, concurrency', () => {
  const relayOf = useRelay({ forward: { allow: ['127.0.0.0/8'] } });
  const blob = randomBytes(50 * 1024 * 1024);
  const blobSha = createHash('sha256').update(blob).digest('hex');
  let web: http.Server;
  let webPort = 0;
  let proxy: SocksServer;
  const associations: Association[] = [];
  let relaySessions = 0;

  beforeAll(async () => {
    web = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': blob.length });
      res.end(blob);
    });
    web.listen(0, '127.0.0.1');
    await once(web, 'listening');
    webPort = (web.address() as net.AddressInfo).port;
    relayOf().listener.on('association', (a) => associations.push(a));
    relayOf().listener.on('stream', () => relaySessions++);
    relayOf().listener.on('messages', () => relaySessions++);
    proxy = await startProxyToRelay(relayOf().invite, ['127.0.0.2', '127.0.0.3'], ['udp', 'udp']);
  });
  afterAll(async () => {
    await proxy.close();
    await new Promise<void>((r) => web.close(() => r()));
  });

  it('fetches 50 MB with curl --socks5-hostname, checksum intact, striped over both paths', async () => {
    const got = await curlThrough(proxy.port, `http://localhost:${webPort}/blob`);
    expect(got.bytes).toBe(blob.length);
    expect(got.sha).toBe(blobSha);
    // The relay's side of the association sent the download over both paths.
    const paths = associations.flatMap((a) => a.pathSummary());
    const total = paths.reduce((s, p) => s + p.streamBytesSent, 0);
    expect(total).toBeGreaterThanOrEqual(blob.length);
    const carrying = paths.filter((p) => p.streamBytesSent > total * 0.1);
    expect(carrying.length).toBeGreaterThanOrEqual(2);
  });

  it('with bypass on, the same fetch touches no association', async () => {
    const sessionsBefore = relaySessions;
    const bytesBefore = associations
      .flatMap((a) => a.pathSummary())
      .reduce((s, p) => s + p.streamBytesSent + p.streamBytesReceived, 0);
    proxy.setGlobalBypass(true);
    try {
      const got = await curlThrough(proxy.port, `http://127.0.0.1:${webPort}/blob`);
      expect(got.sha).toBe(blobSha);
    } finally {
      proxy.setGlobalBypass(false);
    }
    expect(relaySessions).toBe(sessionsBefore);
    const bytesAfter = associations
      .flatMap((a) => a.pathSummary())
      .reduce((s, p) => s + p.streamBytesSent + p.streamBytesReceived, 0);
    // Keepalive probes may pass; no stream data did.
    expect(bytesAfter - bytesBefore).toBe(0);
    expect(proxy.stats.bypassed).toBeGreaterThan(0);
  });

  it('completes 200 concurrent proxied connections', async () => {
    const echo = await tcpEchoServer();
    try {
      const one = async (i: number): Promise<boolean> => {
        const { socket, reply } = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
        if (reply !== Reply.succeeded) return false;
        const payload = Buffer.from(`connection ${i} `.repeat(100));
        const received = readAll(socket);
        socket.end(payload);
        const all = await received;
        return all.subarray(0, payload.length).equals(payload);
      };
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
      expect(results.filter((ok) => ok).length).toBe(200);
    } finally {
      await echo.close();
    }
  });
});
