import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import type { Association } from '../../core/session/association.js';
import { createLogger } from '../../core/util/log.js';
import { impair, seededRandom, type ImpairmentCounters } from '../support/impaired-subflow.js';
import { NUMBERED_BLOCK_BYTES, writeNumberedBlocks } from '../support/hashed-upload.js';
import { useListener } from '../support/listener-fixture.js';

const quiet = createLogger({ level: 'error' });

describe('reorder buffer and send queue stay within their configured bounds', () => {
  const serverOf = useListener();

  it('under loss on one path and delay on another, with small bounds, nothing exceeds them and every byte arrives', async () => {
    const window = 1 << 20;
    const sendLimit = 512 * 1024;
    const counters: ImpairmentCounters = { dropped: 0, reordered: 0, duplicated: 0, tampered: 0 };
    const random = seededRandom(21);
    let serverAssoc: Association | undefined;
    const received = new Promise<{ bytes: number; sha: string }>((resolve) => {
      serverOf().listener.once('stream', (stream, association) => {
        serverAssoc = association;
        const hash = createHash('sha256');
        let bytes = 0;
        stream.on('data', (d: Buffer) => {
          bytes += d.length;
          hash.update(d);
        });
        stream.on('end', () => {
          stream.end();
          resolve({ bytes, sha: hash.digest('hex') });
        });
      });
    });
    const r = await BraidClient.connect({
      invite: serverOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      logger: quiet,
      // The receiver's window bounds its reorder buffer; both ends use the same config here.
      config: { sessionWindow: window, sendBufferLimit: sendLimit, loopbackUdpPacketSize: 1452 },
      wrapSubflow: (s, plan) =>
        impair(
          s,
          plan.localAddress === '127.0.0.2'
            ? { dropRate: 0.03, random }
            : { reorderRate: 0.3, reorderDelayMs: 20, random },
          counters,
        ),
    });
    if (r.kind !== 'braid') throw new Error('expected Braid');
    const client = r.client;
    try {
      const stream = client.openStream();
      const total = Number(process.env.BB_TOTAL ?? 24 * 1024 * 1024);
      const sha = await writeNumberedBlocks(stream, total);
      const got = await received;
      expect(got.bytes).toBe(total);
      expect(got.sha).toBe(sha);
      expect(counters.dropped + counters.reordered).toBeGreaterThan(100);
      const server = serverAssoc!.bufferPeaks();
      const local = client.association.bufferPeaks();
      console.info(
        `buffer peaks: reorder ${server.reorderBytes} of ${window}, send queue ${local.sendQueueBytes} of ${sendLimit}`,
      );
      expect(server.reorderBytes).toBeGreaterThan(0);
      // The server's window is its listener's default unless the client's matches it;
      // the bound that applies is the receiver's own.
      expect(server.reorderBytes).toBeLessThanOrEqual(server.reorderBound);
      expect(local.sendQueueBytes).toBeLessThanOrEqual(sendLimit + NUMBERED_BLOCK_BYTES);
    } finally {
      client.close();
    }
  });
});
