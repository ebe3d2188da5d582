import { afterEach, describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import type { BraidMessageSocket } from '../../core/api/message-socket.js';
import { sessionSocket } from '../../core/api/session-socket.js';
import type { MessageSemantics } from '../../core/session/session.js';
import type { TransportKind } from '../../core/wire/frame.js';
import { createLogger } from '../../core/util/log.js';
import {
  impair,
  type Impairment,
  type ImpairmentCounters,
  newCounters,
  seededRandom,
} from '../support/impaired-subflow.js';
import { useListener } from '../support/listener-fixture.js';

const quiet = createLogger({ level: 'error' });

/** Message `i` carries its number, padded to `size` bytes. */
function message(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

interface Received {
  numbers: number[];
  socket: BraidMessageSocket;
}

describe('message semantics over real paths on loopback', () => {
  const serverOf = useListener();
  const clients: BraidClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  /** Connects over `via`, impairing the client's outgoing packets per path. */
  async function connect(
    via: string[],
    transports: TransportKind[],
    impairment: (local: string) => Impairment | undefined,
    counters: ImpairmentCounters,
  ): Promise<BraidClient> {
    const result = await BraidClient.connect({
      invite: serverOf().invite,
      via,
      transports,
      logger: quiet,
      config: { loopbackUdpPacketSize: 1452 },
      wrapSubflow: (subflow, plan) => {
        const imp = impairment(plan.localAddress);
        return imp === undefined ? subflow : impair(subflow, imp, counters);
      },
    });
    if (result.kind !== 'braid') throw new Error('expected a Braid peer');
    clients.push(result.client);
    return result.client;
  }

  /** The relay side's socket for the next message session, recording what arrives. */
  function nextRemote(): Promise<Received> {
    return new Promise((resolve) => {
      serverOf().listener.once('messages', (socket) => {
        const r: Received = { numbers: [], socket };
        socket.on('message', (m) => {
          if (m.length >= 4) r.numbers.push(m.readUInt32BE(0));
        });
        // The client closes its association after each test.
        socket.on('error', () => undefined);
        resolve(r);
      });
    });
  }

  /** Sends `count` messages, pausing a moment every 50 and whenever the buffer is full, then ends. */
  async function sendAll(socket: BraidMessageSocket, count: number, size: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      if (!socket.send(message(i, size)))
        await new Promise<void>((r) => socket.once('drain', () => r()));
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 1));
    }
    socket.end();
  }

  async function run(
    semantics: MessageSemantics,
    impairment: (local: string) => Impairment | undefined,
    count: number,
    deadlineMs?: number,
    size = 200,
  ): Promise<{ remote: Received; local: BraidMessageSocket; counters: ImpairmentCounters }> {
    const counters = newCounters();
    const client = await connect(['127.0.0.2', '127.0.0.3'], ['udp', 'udp'], impairment, counters);
    const remoteP = nextRemote();
    const local = client.openMessages({ semantics, deadlineMs });
    const ended = new Promise<void>((resolve) => local.once('close', () => resolve()));
    const sending = sendAll(local, count, size);
    const remote = await remoteP;
    const remoteEnded = new Promise<void>((resolve) => remote.socket.once('end', () => resolve()));
    await sending;
    // The CLOSE goes once every message sent is settled (acknowledged or, if
    // unreliable, declared lost), so at 'end' the counts are final.
    await remoteEnded;
    remote.socket.end();
    await ended;
    return { remote, local, counters };
  }

  it('reliable-unordered: every message arrives exactly once through 5% loss and reordering', async () => {
    const random = seededRandom(11);
    const { remote, local, counters } = await run(
      'reliable-unordered',
      (a) =>
        a === '127.0.0.2'
          ? { dropRate: 0.05, random }
          : { reorderRate: 0.2, reorderDelayMs: 5, random },
      5000,
    );
    // The loss bit: coupled congestion control (the two loopback paths start linked)
    // moves traffic off the lossy path, so fewer packets meet its 5% (15-20 drops seen).
    expect(counters.dropped).toBeGreaterThan(5);
    expect(counters.reordered).toBeGreaterThan(20);
    expect(remote.numbers.length).toBe(5000);
    expect(new Set(remote.numbers).size).toBe(5000);
    expect(local.stats.retransmitted).toBeGreaterThan(0);
    // Delivered on arrival: some messages overtook earlier ones.
    const inversions = remote.numbers.filter((n, i) => i > 0 && n < remote.numbers[i - 1]!);
    expect(inversions.length).toBeGreaterThan(0);
  });

  it('unreliable-unordered: losses are not repaired and nothing is delivered twice', async () => {
    const random = seededRandom(12);
    const { remote, local, counters } = await run(
      'unreliable-unordered',
      // Both paths lossy, so that the scheduler cannot steer around the loss.
      () => ({ dropRate: 0.1, duplicateRate: 0.05, random }),
      3000,
      undefined,
      1000, // one message per packet, so that each drop loses one
    );
    expect(counters.dropped).toBeGreaterThan(10);
    expect(counters.duplicated).toBeGreaterThan(0);
    expect(remote.numbers.length).toBeLessThan(3000);
    // The sender's loss detection accounts for every message that did not arrive.
    expect(local.stats.lost).toBeGreaterThan(0);
    expect(local.stats.lost).toBeGreaterThanOrEqual(3000 - remote.numbers.length);
    expect(new Set(remote.numbers).size).toBe(remote.numbers.length);
    expect(local.stats.retransmitted).toBe(0);
  });

  it('unreliable-ordered: delivered in order, late messages dropped and counted, none after its deadline', async () => {
    const random = seededRandom(13);
    const deadlineMs = 40;
    const { remote, counters } = await run(
      'unreliable-ordered',
      // One path holds back a tenth of its packets for 150 ms: far past the deadline.
      (a) => (a === '127.0.0.2' ? { reorderRate: 0.1, reorderDelayMs: 150, random } : undefined),
      3000,
      deadlineMs,
    );
    expect(counters.reordered).toBeGreaterThan(0);
    const n = remote.numbers;
    for (let i = 1; i < n.length; i++) expect(n[i]!).toBeGreaterThan(n[i - 1]!);
    const stats = remote.socket.stats;
    // Each held-back packet's messages were dropped late, skipped, or (when the loss
    // objective had sent a copy on the other path) recognised as duplicates of ones
    // already delivered; never delivered again.
    expect(stats.late + stats.skipped + stats.duplicates).toBeGreaterThan(0);
    expect(stats.delivered).toBe(n.length);
    // Timing itself (never delivered after its deadline) is proved under a simulated
    // clock in test/unit/session/message-queues.test.ts; a loaded CI machine's event
    // loop lag would make a wall-clock bound here flaky.
  });

  it('sessionSocket() gives a message socket for message semantics, and a CLOSE ends both sides', async () => {
    const socket = sessionSocket('reliable-unordered', ['latency', 'loss']);
    const remoteP = nextRemote();
    const messages = await socket.connect(serverOf().invite, {
      via: ['127.0.0.2', '127.0.0.3'],
      logger: quiet,
    });
    expect(socket.state).toBe('striped');
    // The OPEN goes out at once, before any message.
    const remote = await remoteP;
    remote.socket.on('message', (m) => remote.socket.send(Buffer.concat([Buffer.from('re: '), m])));
    const echoed = new Promise<Buffer>((resolve) => messages.once('message', resolve));
    messages.send('hello');
    expect((await echoed).toString()).toBe('re: hello');
    const peerEnd = new Promise<void>((resolve) => remote.socket.once('end', () => resolve()));
    messages.end();
    await peerEnd;
    expect(() => messages.send('more')).toThrow(/closing/);
    await socket.close();
  });

  it('refuses a message larger than the limit with a clear error', async () => {
    const client = await connect(['127.0.0.2'], ['udp'], () => undefined, {
      dropped: 0,
      reordered: 0,
      duplicated: 0,
      tampered: 0,
    });
    const m = client.openMessages({ semantics: 'unreliable-unordered' });
    expect(() => m.send(Buffer.alloc(m.maxMessageSize + 1))).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_USAGE' }),
    );
    expect(m.send(Buffer.alloc(m.maxMessageSize))).toBe(true);
  });
});
