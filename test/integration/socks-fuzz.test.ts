import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocksServer } from '../../core/proxy/socks-server.js';
import { seededRandom } from '../support/impaired-subflow.js';
import { startProxyToRelay, useRelay } from '../support/relay-fixture.js';
import { socksRequest, tcpEchoServer } from '../unit/proxy/socks-client.js';
import { Reply } from '../../core/proxy/socks5-parser.js';

/** `npm run fuzz` sets this to 100,000; npm test runs a short pass. */
const RUNS = Number(process.env.BRAID_SOCKS_FUZZ_RUNS ?? 500);

/** A valid greeting + CONNECT, then mutated: bytes flipped, cut, inserted, or pure noise. */
function fuzzInput(random: () => number, port: number): Buffer {
  const valid = Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff]);
  const kind = random();
  if (kind < 0.2) {
    return Buffer.from(
      Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)),
    );
  }
  const b = Buffer.from(valid);
  const flips = 1 + Math.floor(random() * 3);
  for (let i = 0; i < flips; i++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
  if (kind < 0.5) return b.subarray(0, Math.floor(random() * b.length));
  if (kind < 0.7) {
    const extra = Buffer.from(
      Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256)),
    );
    return Buffer.concat([b, extra]);
  }
  return b;
}

function sendRaw(port: number, data: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(data));
    s.on('data', () => undefined);
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    // A request the proxy still waits on (cut short) is closed by us.
    s.setTimeout(2000, () => s.destroy());
  });
}

describe('SOCKS5 proxy under fuzzed requests', () => {
  const relayOf = useRelay({ forward: { allow: ['127.0.0.0/8'] } });
  let proxy: SocksServer;
  let echo: Awaited<ReturnType<typeof tcpEchoServer>>;
  beforeAll(async () => {
    echo = await tcpEchoServer();
    proxy = await startProxyToRelay(relayOf().invite, ['127.0.0.2']);
  });
  afterAll(async () => {
    await proxy.close();
    await echo.close();
  });

  it(
    `survives ${RUNS} mutated and random requests without a crash or a leaked socket, and keeps serving`,
    async () => {
      const random = seededRandom(1928);
      const handlesBefore = process
        .getActiveResourcesInfo()
        .filter((r) => r === 'TCPSocketWrap').length;
      // 50 clients at a time, each starting the next request as soon as its own ends:
      // a request the relay must time out (an unreachable address) holds one client
      // for its 2 s, not a whole batch of 50.
      let next = 0;
      const client = async (): Promise<void> => {
        while (next < RUNS) {
          next++;
          await sendRaw(proxy.port, fuzzInput(random, echo.port));
        }
      };
      await Promise.all(Array.from({ length: 50 }, client));
      // Every fuzzed connection is gone from the proxy and from the process. A mutated
      // request may name a host the relay must first fail to resolve, so allow time.
      const tcpHandles = (): number =>
        process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
      for (
        let i = 0;
        i < 300 && (proxy.connections().length > 0 || tcpHandles() > handlesBefore + 2);
        i++
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(proxy.connections()).toEqual([]);
      // On failure, say which sockets are left (Node has no public API for this).
      const leftSockets = (): string =>
        (process as unknown as { _getActiveHandles(): unknown[] })
          ._getActiveHandles()
          .filter((h): h is net.Socket => h instanceof net.Socket)
          .map((h) => `${h.localAddress}:${h.localPort}->${h.remoteAddress}:${h.remotePort}`)
          .join(', ');
      expect(tcpHandles(), leftSockets()).toBeLessThanOrEqual(handlesBefore + 2);
      expect(proxy.stats.malformed).toBeGreaterThan(RUNS / 4);
      // And a legitimate request still works.
      const { socket, reply } = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
      expect(reply).toBe(Reply.succeeded);
      socket.destroy();
    },
    Math.max(120_000, RUNS * 20),
  ); // about 2 ms per request on this machine (10,000 in 21 s), with room
});
