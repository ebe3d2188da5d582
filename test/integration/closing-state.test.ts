import { describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import type { BraidStream } from '../../core/api/braid-stream.js';
import type { Association } from '../../core/session/association.js';
import { createLogger } from '../../core/util/log.js';
import { impair, type Impairment, newCounters, seededRandom } from '../support/impaired-subflow.js';
import { useListener } from '../support/listener-fixture.js';
import { until } from '../support/wait.js';

const quiet = createLogger({ level: 'error' });

/**
 * A close is one datagram per path. When every copy is lost, the peer, still
 * sending, would learn of the close only at its idle timeout; in the closing state
 * (RFC 9000 §10.2.1) the closed end answers its late packets with the close again.
 */
describe('the closing state', () => {
  const serverOf = useListener();

  it('answers a peer that missed every copy of the close, which then closes at once, not at its idle timeout', async () => {
    const impairments: Impairment[] = [];
    const counters = newCounters();
    const accepted = new Promise<{ stream: BraidStream; association: Association }>((resolve) =>
      serverOf().listener.once('stream', (stream: BraidStream, association: Association) =>
        resolve({ stream, association }),
      ),
    );
    const r = await BraidClient.connect({
      invite: serverOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      logger: quiet,
      wrapSubflow: (s) => {
        const imp: Impairment = { random: seededRandom(impairments.length + 1) };
        impairments.push(imp);
        return impair(s, imp, counters);
      },
    });
    if (r.kind !== 'braid') throw new Error('expected Braid');
    const client = r.client.association;
    r.client.openStream().write('hello');
    const server = await accepted;
    server.stream.resume();
    const serverErrors: string[] = [];
    server.stream.on('error', (err: Error & { code?: string }) =>
      serverErrors.push(err.code ?? ''),
    );
    let serverClosedAt = 0;
    server.association.once('closed', () => (serverClosedAt = Date.now()));
    let released = false;
    client.once('released', () => (released = true));

    // Every copy of the client's close is lost.
    for (const imp of impairments) imp.blackhole = true;
    r.client.close();
    expect(client.state).toBe('closed');
    expect(counters.dropped).toBeGreaterThanOrEqual(2);
    for (const imp of impairments) imp.blackhole = false;
    expect(client.closingAnswers).toBe(0);
    expect(released).toBe(false);

    // The server still sends (ACKs, and data here); a packet of it is answered with
    // the close, and the server closes then, 30 s before its idle timeout.
    const wroteAt = Date.now();
    if (server.association.state !== 'closed') server.stream.write(Buffer.alloc(4000));
    await until(() => server.association.state === 'closed', "the server's close", 2000);
    expect(client.closingAnswers).toBeGreaterThanOrEqual(1);
    expect(serverClosedAt === 0 || serverClosedAt - wroteAt < 1000).toBe(true);
    // Its stream ends as the peer's graceful close ends it.
    expect(serverErrors).toEqual(['BRAID_ERR_ASSOCIATION_CLOSED']);
    // The closing period ends and the client lets its sockets go.
    await until(() => released, 'the end of the closing period', 4000);
  });
});
