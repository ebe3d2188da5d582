/**
 * SECURITY.md, resource bounds: a peer that opens many sessions and fills them while
 * the application reads none of them must not make one association hold more than
 * config.associationBuffer (before it, 16 MiB per session × any number of sessions).
 * Real listener and client over loopback UDP; the receiving application is the test.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { defaultConfig, verifyConfig, type Config } from '../../core/session/config.js';
import type { Association } from '../../core/session/association.js';
import { INITIAL_PEER_WINDOW } from '../../core/session/session.js';
import { BraidError } from '../../core/util/errors.js';
import { createLogger } from '../../core/util/log.js';
import { until } from './support/on-path.js';

const quiet = createLogger({ level: 'silent' });
const MiB = 1024 * 1024;

interface Setup {
  listener: BraidListener;
  client: BraidClient;
  /** The receiving association, once the client's first session reached it. */
  server: () => Association;
  /** Streams the listener accepted, by target. */
  accepted: Map<string, BraidStream>;
  /** SHA-256 of what a 'paused*' session received, once it ended. */
  pausedDigest: Map<string, Promise<string>>;
  dispose: () => Promise<void>;
}

/**
 * A listener whose application serves 'echo*' sessions (echoes them) and reads no other
 * session, and a client associated with it.
 */
async function setUp(config: Partial<Config>): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'braid-assoc-buffer-'));
  const identity = loadOrCreateServerIdentity(dir);
  const key = addClientKey(dir, 'test');
  const listener = await BraidListener.listen({
    host: '127.0.0.1',
    port: 0,
    identity,
    clients: () => loadClientKeys(dir),
    config,
    logger: quiet,
  });
  let server: Association | undefined;
  const accepted = new Map<string, BraidStream>();
  const pausedDigest = new Map<string, Promise<string>>();
  listener.on('stream', (stream, association) => {
    server = association;
    accepted.set(stream.session.target, stream);
    stream.on('error', () => undefined);
    if (stream.session.target.startsWith('echo')) stream.pipe(stream);
    // 'paused': the application reads the first chunk, then nothing until resumed.
    if (stream.session.target.startsWith('paused')) {
      const hash = createHash('sha256');
      stream.on('data', (c: Buffer) => hash.update(c));
      stream.once('data', () => stream.pause());
      pausedDigest.set(
        stream.session.target,
        new Promise((resolve) => stream.once('end', () => resolve(hash.digest('hex')))),
      );
    }
  });
  const connected = await BraidClient.connect({
    invite: formatInvite({
      host: '127.0.0.1',
      port: listener.port,
      fingerprint: identity.fingerprint,
      keyId: key.keyId,
      key: key.key,
    }),
    via: ['127.0.0.2'],
    config,
    logger: quiet,
  });
  if (connected.kind !== 'braid') throw new Error('expected a Braid association');
  return {
    listener,
    client: connected.client,
    server: () => {
      if (server === undefined) throw new Error('no session reached the listener yet');
      return server;
    },
    accepted,
    pausedDigest,
    dispose: async () => {
      connected.client.close();
      await listener.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes `bytes` on a session and ends it; resolves with how it ended. */
function flood(
  client: BraidClient,
  target: string,
  bytes: number,
): { stream: BraidStream; outcome: Promise<string> } {
  const stream = client.openStream({ target });
  const outcome = new Promise<string>((resolve) => {
    // A RESET from the peer arrives as BRAID_ERR_SESSION_RESET with the peer's code as value.
    stream.on('error', (err) =>
      resolve(err instanceof BraidError ? `${err.code}/${String(err.value)}` : err.message),
    );
    stream.on('close', () => resolve('closed'));
  });
  stream.on('data', () => undefined);
  stream.end(randomBytes(bytes));
  return { stream, outcome };
}

/** Echoes `bytes` on an 'echo' session; resolves when the echo is back, with both hashes. */
async function echo(
  client: BraidClient,
  target: string,
  bytes: number,
): Promise<{ sent: string; back: string }> {
  const stream = client.openStream({ target });
  const payload = randomBytes(bytes);
  const back = createHash('sha256');
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => back.update(c));
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  stream.end(payload);
  await done;
  return {
    sent: createHash('sha256').update(payload).digest('hex'),
    back: back.digest('hex'),
  };
}

describe('the association-wide receive buffer (config.associationBuffer)', () => {
  it('is checked by verifyConfig: at least one session window', () => {
    expect(defaultConfig.associationBuffer).toBe(64 * MiB);
    expect(() => verifyConfig({ sessionWindow: 16 * MiB, associationBuffer: 8 * MiB })).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_CONFIG' }) as Error,
    );
    expect(() => verifyConfig({ associationBuffer: 0 })).toThrow(BraidError);
  });

  it('grants full windows to the first byte streams: message sessions take no credit, later streams get what is left', async () => {
    const setup = await setUp({});
    try {
      const window = defaultConfig.sessionWindow;
      const messages = Array.from({ length: 4 }, () =>
        setup.client.openMessages({ semantics: 'reliable-unordered', target: 'm' }),
      );
      const streams = Array.from({ length: 3 }, (_, i) =>
        setup.client.openStream({ target: `s${i}` }),
      );
      const granted = streams.map((s) => s.session.recv.advertisedOffset);
      // Half of 64 MiB for windows beyond 256 KiB: two full 16 MiB windows, then the rest.
      expect(granted).toEqual([
        window,
        window,
        INITIAL_PEER_WINDOW +
          (defaultConfig.associationBuffer / 2 - 2 * (window - INITIAL_PEER_WINDOW)),
      ]);
      for (const m of messages) m.end();
      for (const s of streams) s.destroy();
    } finally {
      await setup.dispose();
    }
  });

  it('holds a peer that fills sessions the application does not read to the cap by flow control alone, and delivers everything once read', async () => {
    // 16 sessions × 2 MiB against an 8 MiB cap and 4 MiB windows: without the cap the
    // receiver would hold 32 MiB. 16 is the most the cap covers by flow control alone
    // (half of it set aside for 256 KiB per session).
    const cap = 8 * MiB;
    const setup = await setUp({ sessionWindow: 4 * MiB, associationBuffer: cap });
    try {
      const sessions = Array.from({ length: 16 }, (_, i) =>
        flood(setup.client, `idle-${i}`, 2 * MiB),
      );
      await until(() => setup.accepted.size === 16, 10_000);
      const server = setup.server();
      // Give the sender every chance to push past the windows it was granted.
      await settled(() => server.receiveBuffered);
      const peak = server.bufferPeaks();
      console.log(
        `[association-buffer] 16 unread sessions × 2 MiB, cap ${cap}: held ${server.receiveBuffered}, peak ${peak.associationReceiveBytes}, shed ${server.sessionsShed}`,
      );
      expect(peak.associationReceiveBytes).toBeLessThanOrEqual(cap);
      expect(peak.associationReceiveBytes).toBeGreaterThan(16 * INITIAL_PEER_WINDOW);
      expect(server.sessionsShed).toBe(0);
      // The application reads now: every byte of every session arrives.
      const received = [...setup.accepted.values()].map(
        (s) =>
          new Promise<number>((resolve, reject) => {
            let n = 0;
            s.on('data', (c: Buffer) => (n += c.length));
            s.once('end', () => resolve(n));
            s.once('error', reject);
          }),
      );
      expect(await Promise.all(received)).toEqual(Array<number>(16).fill(2 * MiB));
      for (const s of sessions) s.stream.destroy();
    } finally {
      await setup.dispose();
    }
  }, 60_000);

  it('resets never-read sessions when a peer fills more initial windows than the default cap holds, while read sessions, even one holding a whole window, complete intact', async () => {
    // Default config: 64 MiB cap. 320 sessions × 320 KiB: each may send 256 KiB before any
    // MAX_DATA, 80 MiB in all, beyond the cap.
    const cap = defaultConfig.associationBuffer;
    const setup = await setUp({});
    try {
      const legit = echo(setup.client, 'echo-first', 4 * MiB);
      // A session the application read from and then paused: it holds a whole 16 MiB
      // window, far more than any flood session, and must not be the one reset.
      const pausedPayload = randomBytes(24 * MiB);
      const paused = setup.client.openStream({ target: 'paused' });
      const pausedErrors: Error[] = [];
      paused.on('error', (e) => pausedErrors.push(e));
      paused.end(pausedPayload);
      await until(() => (setup.accepted.get('paused')?.session.heldBytes ?? 0) >= 14 * MiB, 30_000);
      const sessions = Array.from({ length: 320 }, (_, i) =>
        flood(setup.client, `idle-${i}`, 320 * 1024),
      );
      const legitLate = echo(setup.client, 'echo-late', 4 * MiB);
      for (const r of [await legit, await legitLate]) expect(r.back).toBe(r.sent);
      await until(() => setup.accepted.size >= 320, 20_000);
      const server = setup.server();
      await until(() => server.sessionsShed > 0, 20_000);
      await settled(() => server.receiveBuffered);
      // Each shed session's RESET reaches the client; the others wait for window, held
      // at their 256 KiB until the application reads (it never does here).
      const outcomes: string[] = [];
      for (const s of sessions) void s.outcome.then((o) => outcomes.push(o));
      await until(() => outcomes.length >= server.sessionsShed, 20_000);
      await settled(() => outcomes.length);
      const peak = server.bufferPeaks();
      console.log(
        `[association-buffer] 320 unread sessions × 320 KiB, default cap ${cap}: held ${server.receiveBuffered}, peak ${peak.associationReceiveBytes}, shed ${server.sessionsShed}, client outcomes ${JSON.stringify(countBy(outcomes))}, rss ${Math.round(process.memoryUsage().rss / MiB)} MiB`,
      );
      // Never more than the cap plus the one packet whose arrival triggered the shedding.
      expect(peak.associationReceiveBytes).toBeLessThanOrEqual(cap + 64 * 1024);
      expect(server.receiveBuffered).toBeLessThanOrEqual(cap);
      expect(server.sessionsShed).toBeGreaterThan(0);
      expect(countBy(outcomes)).toEqual({
        'BRAID_ERR_SESSION_RESET/BRAID_ERR_FLOW_CONTROL': server.sessionsShed,
      });
      // The paused session held the most, and was spared; read now, it completes intact.
      expect(pausedErrors).toEqual([]);
      expect(setup.accepted.get('paused')!.session.isDone).toBe(false);
      setup.accepted.get('paused')!.resume();
      expect(await setup.pausedDigest.get('paused')).toBe(
        createHash('sha256').update(pausedPayload).digest('hex'),
      );
      // The association itself carries on: a session read after the shedding completes.
      const after = await echo(setup.client, 'echo-after', 2 * MiB);
      expect(after.back).toBe(after.sent);
      expect(setup.client.association.state).toBe('active');
      for (const s of sessions) s.stream.destroy();
    } finally {
      await setup.dispose();
    }
  }, 90_000);
});

/** Waits until `read()` has not moved for half a second (20 s at most). */
async function settled(read: () => number): Promise<void> {
  let last = -1;
  let still = 0;
  const started = Date.now();
  while (still < 5 && Date.now() - started < 20_000) {
    await new Promise((r) => setTimeout(r, 100));
    const now = read();
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
