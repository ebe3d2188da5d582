import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import type { Association } from '../../core/session/association.js';
import { createLogger } from '../../core/util/log.js';
import { impair, newCounters, seededRandom } from '../support/impaired-subflow.js';
import { NUMBERED_BLOCK_BYTES, writeNumberedBlocks } from '../support/hashed-upload.js';
import { useListener } from '../support/listener-fixture.js';

const quiet = createLogger({ level: 'error' });

/** The server side: hashes what arrives, and ends its own side at the end. */
function hashToEnd(stream: Duplex): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve) => {
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
}

/** Reads a stream to its end (the peer's empty answer), so that its session finishes. */
function readToEnd(stream: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    stream.once('end', resolve);
    stream.resume();
  });
}

describe('reorder buffer and send queue stay within their configured bounds', () => {
  const serverOf = useListener();

  it('under loss on one path and delay on another, with small bounds, nothing exceeds them and every byte arrives', async () => {
    const window = 1 << 20;
    const sendLimit = 512 * 1024;
    const counters = newCounters();
    const random = seededRandom(21);
    let serverAssoc: Association | undefined;
    // The server's stream may not fail, not even when the client closes the association
    // right after reading the server's FIN: the ACK of that FIN rides on every closing
    // packet, so the server's end has finished by the time the close reaches it.
    const serverErrors: Error[] = [];
    const received = new Promise<{ bytes: number; sha: string }>((resolve) => {
      serverOf().listener.once('stream', (stream, association) => {
        serverAssoc = association;
        stream.on('error', (err) => serverErrors.push(err));
        resolve(hashToEnd(stream));
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
      // The server ends its side once all arrived: read to that end, so that the session
      // has finished here before the association closes.
      const finished = readToEnd(stream);
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
      await finished;
      const serverClosed = new Promise((resolve) => serverAssoc!.once('closed', resolve));
      client.close();
      await serverClosed;
      expect(serverErrors).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('several sessions together stay within the association send buffer, and every byte of each arrives', async () => {
    const sendLimit = 1 << 20;
    const bound = 1536 * 1024;
    const sessions = 4;
    const total = 6 * 1024 * 1024;
    const received = new Map<string, Promise<{ bytes: number; sha: string }>>();
    // The server's streams see the association close when the test ends; before that, none may fail.
    const serverErrors: Error[] = [];
    const arrived = new Promise<void>((all) => {
      serverOf().listener.on('stream', (stream) => {
        stream.on('error', (err) => serverErrors.push(err));
        received.set(stream.session.target, hashToEnd(stream));
        if (received.size === sessions) all();
      });
    });
    const r = await BraidClient.connect({
      invite: serverOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      logger: quiet,
      config: {
        sendBufferLimit: sendLimit,
        associationSendBuffer: bound,
        loopbackUdpPacketSize: 1452,
      },
    });
    if (r.kind !== 'braid') throw new Error('expected Braid');
    const client = r.client;
    try {
      const streams = Array.from({ length: sessions }, (_, i) =>
        client.openStream({ target: `s${i}` }),
      );
      // The server answers each with an empty stream: read to its end, so that each
      // session finishes before the association closes.
      const finished = streams.map(readToEnd);
      // Each session alone may hold 1 MiB; the four together only 1.5 MiB.
      let waitedOnTotal = 0;
      const sampler = setInterval(() => {
        if (client.association.sendBuffered >= bound) waitedOnTotal++;
      }, 2);
      const shas = await Promise.all(streams.map((s) => writeNumberedBlocks(s, total)));
      await arrived;
      clearInterval(sampler);
      for (let i = 0; i < sessions; i++) {
        const got = await received.get(`s${i}`)!;
        expect(got.bytes).toBe(total);
        expect(got.sha).toBe(shas[i]);
      }
      const peaks = client.association.bufferPeaks();
      expect(peaks.associationSendBound).toBe(bound);
      // Over the bound by at most one write per session (a write that found room).
      expect(peaks.associationSendBytes).toBeLessThanOrEqual(
        bound + sessions * NUMBERED_BLOCK_BYTES,
      );
      expect(peaks.associationSendBytes).toBeGreaterThan(bound * 0.9);
      expect(peaks.sendQueueBytes).toBeLessThanOrEqual(sendLimit + NUMBERED_BLOCK_BYTES);
      expect(waitedOnTotal).toBeGreaterThan(0);
      // Every session ended: nothing is left counted.
      await Promise.all(finished);
      await new Promise((res) => setTimeout(res, 50));
      expect(client.association.sendBuffered).toBe(0);
      expect(serverErrors).toEqual([]);
    } finally {
      client.close();
    }
  });
});
