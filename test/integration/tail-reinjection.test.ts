import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import { createLogger } from '../../core/util/log.js';
import { impair, newCounters, seededRandom } from '../support/impaired-subflow.js';
import { writeNumberedBlocks } from '../support/hashed-upload.js';
import { useListener } from '../support/listener-fixture.js';

const quiet = createLogger({ level: 'error' });

describe('the end of a stream does not wait for a slower path', () => {
  const serverOf = useListener();

  const total = 4 * 1024 * 1024;

  /** Uploads `total` bytes, ending the stream (a FIN) or leaving it open after them. */
  const upload = async (slowMs: number | undefined, end = true) => {
    const received = new Promise<{ bytes: number; sha: string }>((resolve) => {
      serverOf().listener.once('stream', (stream) => {
        const hash = createHash('sha256');
        let bytes = 0;
        stream.on('data', (d: Buffer) => {
          bytes += d.length;
          hash.update(d);
          // Left open: all of it is the whole response.
          if (!end && bytes === total) resolve({ bytes, sha: hash.digest('hex') });
        });
        stream.on('end', () => stream.end());
        // Both halves done before the client closes the association.
        if (end) stream.on('close', () => resolve({ bytes, sha: hash.digest('hex') }));
      });
    });
    const counters = newCounters();
    const random = seededRandom(5);
    const r = await BraidClient.connect({
      invite: serverOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      logger: quiet,
      config: { joinTimeoutMs: 10_000, loopbackUdpPacketSize: 1452 },
      // Half of 127.0.0.3's packets to the server take slowMs longer: a radio uplink
      // whose delay swings, so that some of what it carries at the end arrives late.
      wrapSubflow: (s, plan) =>
        plan.localAddress === '127.0.0.3' && slowMs !== undefined
          ? impair(s, { reorderRate: 0.5, reorderDelayMs: slowMs, random }, counters)
          : s,
    });
    if (r.kind !== 'braid') throw new Error('expected Braid');
    const client = r.client;
    try {
      const stream = client.openStream();
      const session = [...client.association.sessions.values()][0]!;
      const sha = await writeNumberedBlocks(stream, total, end);
      const got = await received;
      expect(got.bytes).toBe(total);
      expect(got.sha).toBe(sha);
      if (!end) {
        // Nothing more was written: 2 ms after the buffer emptied the tail was looked at.
        const until = Date.now() + 2000;
        while (!session.tailChecked && Date.now() < until)
          await new Promise((resolve) => setTimeout(resolve, 5));
        expect(stream.writable).toBe(true);
      }
      return { session, slowBytes: session.bytesByPath };
    } finally {
      client.close();
    }
  };

  it('delivers every byte once when the tail of a stream goes again on the fastest path', async () => {
    // Which packets of the jittery path are late at the end varies from run to run; the
    // reinjection itself is checked deterministically in test/unit/session.
    const { session, slowBytes } = await upload(60);
    expect([...slowBytes.values()].every((b) => b > 0)).toBe(true);
    expect(session.tailChecked).toBe(true);
    console.info(`tail reinjected ${session.tailReinjectedBytes} bytes`);
  });

  it('looks at the tail of a burst left open without a FIN, and every byte arrives once', async () => {
    const { session, slowBytes } = await upload(60, false);
    expect([...slowBytes.values()].every((b) => b > 0)).toBe(true);
    expect(session.tailChecked).toBe(true);
    expect(session.drainedAt).toBe(-1);
    console.info(`idle tail reinjected ${session.tailReinjectedBytes} bytes`);
  });
});
