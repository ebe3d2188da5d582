import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocksServer } from '../../core/proxy/socks-server.js';
import { startProxyToRelay, useRelay } from '../support/relay-fixture.js';

/**
 * Found by the socket-level SOCKS fuzz (10,000 inputs): a client that ends its TCP
 * connection while its UDP ASSOCIATE is being set up left the association open for
 * good, because the connection's 'end' came before the proxy listened for it.
 * RFC 1928 §7: the association ends with that connection.
 */
describe('SOCKS UDP ASSOCIATE whose client leaves during set-up', () => {
  const relayOf = useRelay();
  let proxy: SocksServer;
  beforeAll(async () => {
    proxy = await startProxyToRelay(relayOf().invite, ['127.0.0.2']);
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('ends every such association, whether the client half-closes or resets', async () => {
    // Greeting, then UDP ASSOCIATE for 127.0.0.1:0, in one write.
    const request = Buffer.from([5, 1, 0, 5, 3, 0, 1, 127, 0, 0, 1, 0, 0]);
    for (const mode of ['end', 'reset'] as const) {
      await Promise.all(
        Array.from(
          { length: 50 },
          () =>
            new Promise<void>((resolve) => {
              const s = net.connect(proxy.port, '127.0.0.1', () => {
                if (mode === 'end') s.end(request);
                else {
                  s.write(request);
                  setImmediate(() => s.destroy());
                }
              });
              s.on('data', () => undefined);
              s.on('error', () => resolve());
              s.on('close', () => resolve());
              s.setTimeout(2000, () => s.destroy());
            }),
        ),
      );
      for (let i = 0; i < 50 && proxy.connections().length > 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(proxy.connections(), mode).toEqual([]);
    }
  });
});
