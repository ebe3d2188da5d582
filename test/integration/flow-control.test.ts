import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import { BraidListener } from '../../core/api/listener.js';
import type { BraidStream } from '../../core/api/braid-stream.js';
import {
  addClientKey,
  loadClientKeys,
  loadOrCreateServerIdentity,
} from '../../core/handshake/identity-store.js';
import { formatInvite } from '../../core/handshake/invite.js';
import { createLogger } from '../../core/util/log.js';

const quiet = createLogger({ level: 'error' });
const WINDOW = 2 * 1024 * 1024;

describe('session flow control over real paths', () => {
  it('stops a sender at the receive window while the application does not read, then delivers everything once it does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'braid-flow-'));
    const identity = loadOrCreateServerIdentity(dir);
    const key = addClientKey(dir, 'test');
    const config = { sessionWindow: WINDOW, sendBufferLimit: WINDOW };
    const listener = await BraidListener.listen({
      host: '127.0.0.1',
      port: 0,
      identity,
      clients: () => loadClientKeys(dir),
      config,
      logger: quiet,
    });
    const accepted = new Promise<BraidStream>((resolve) => listener.on('stream', resolve));
    const invite = formatInvite({
      host: '127.0.0.1',
      port: listener.port,
      fingerprint: identity.fingerprint,
      keyId: key.keyId,
      key: key.key,
    });
    const connected = await BraidClient.connect({
      invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'tcp'],
      config,
      logger: quiet,
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    const client = connected.client;
    try {
      const stream = client.openStream();
      const payload = randomBytes(20 * 1024 * 1024);
      let written = 0;
      // Write while the session accepts; the server application reads nothing, so
      // eventually a 'drain' no longer comes.
      for (;;) {
        while (
          written < payload.length &&
          stream.write(payload.subarray(written, written + 256 * 1024))
        )
          written += 256 * 1024;
        written += 256 * 1024;
        const drained = await Promise.race([
          new Promise<boolean>((r) => stream.once('drain', () => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), 400)),
        ]);
        // No drain for a while is the sign only once the window really is used up: a
        // loaded machine may simply be slow to drain.
        if (!drained && stream.session.send.flowBlocked) break;
      }
      const server = await accepted;
      const receiving = server.session.recv;
      const sending = stream.session.send;
      // The receiver holds at most one window; the sender stopped at the peer's limit.
      expect(receiving.bufferedBytes + server.readableLength).toBeLessThanOrEqual(
        WINDOW + 1024 * 1024,
      );
      expect(sending.nextOffset).toBeLessThanOrEqual(receiving.maxOffset);
      expect(sending.flowBlocked).toBe(true);
      expect(stream.writableNeedDrain).toBe(true);
      // The application waits on a full send buffer: the scheduler's backlog (ECF's k) is
      // unbounded, not the buffer's size.
      expect(stream.session.backlogBytes).toBe(Infinity);
      // And the sender holds what it may: its send buffer limit plus the stream's own buffer.
      expect(sending.bufferedBytes).toBeLessThanOrEqual(WINDOW + 256 * 1024);
      expect(written).toBeLessThan(2 * WINDOW + 3 * 1024 * 1024);
      // Now the application reads: everything arrives, in order, exactly once.
      const chunks: Buffer[] = [];
      server.on('data', (c: Buffer) => chunks.push(c));
      const ended = new Promise((r) => server.on('end', r));
      const rest = async (): Promise<void> => {
        while (written < payload.length) {
          const piece = payload.subarray(written, written + 256 * 1024);
          written += piece.length;
          if (!stream.write(piece)) await new Promise((r) => stream.once('drain', r));
        }
        stream.end();
      };
      await new Promise((r) => stream.once('drain', r));
      await rest();
      await ended;
      expect(Buffer.concat(chunks).equals(payload)).toBe(true);
      // Written out: the backlog is what is left in the buffer.
      expect(stream.session.backlogBytes).toBeLessThanOrEqual(WINDOW);
    } finally {
      client.close();
      await listener.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
