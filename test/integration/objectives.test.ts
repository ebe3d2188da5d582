import { afterEach, describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import { createLogger } from '../../core/util/log.js';
import {
  impair,
  seededRandom,
  type Impairment,
  type ImpairmentCounters,
  newCounters,
} from '../support/impaired-subflow.js';
import { useRelay } from '../support/relay-fixture.js';

const quiet = createLogger({ level: 'error' });

/**
 * Objective schedulers wired into the engine, over real paths on loopback: the
 * emulated link in front of one path (a constant extra delay, or loss) is the input
 * under test; sockets, crypto and the session layer are real.
 */
describe('objectives drive the choice of path', () => {
  const relayOf = useRelay();
  const clients: BraidClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  async function connect(
    slow: Impairment | undefined,
    counters: ImpairmentCounters,
    both = false,
  ): Promise<BraidClient> {
    const r = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      logger: quiet,
      config: { loopbackUdpPacketSize: 1452 },
      // 127.0.0.3 is the worse uplink (or, with `both`, each is); both directions.
      wrapSubflow: (s, plan) =>
        (plan.localAddress === '127.0.0.3' || both) && slow !== undefined
          ? impair(s, slow, counters)
          : s,
    });
    if (r.kind !== 'braid') throw new Error('expected Braid');
    clients.push(r.client);
    // Warm up: traffic on both paths, so that each has RTT samples.
    const warm = r.client.openMessages({ semantics: 'unreliable-unordered', target: 'echo' });
    warm.on('error', () => undefined);
    for (let i = 0; i < 60; i++) {
      warm.send(Buffer.alloc(1000, i));
      if (i % 10 === 9) await new Promise((res) => setTimeout(res, 20));
    }
    await new Promise((res) => setTimeout(res, 150));
    warm.destroy();
    return r.client;
  }

  const counters = newCounters;

  /** Sends `n` small messages at `intervalMs` and returns bytes per local address. */
  async function trickle(
    client: BraidClient,
    options: Parameters<BraidClient['openMessages']>[0],
    n: number,
    intervalMs: number,
  ): Promise<Map<string, number>> {
    const socket = client.openMessages({ target: 'echo', ...options });
    socket.on('error', () => undefined);
    for (let i = 0; i < n; i++) {
      socket.send(Buffer.alloc(200, i));
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    const byPath = new Map<string, number>();
    for (const p of client.association.pathSummary()) {
      byPath.set(p.local, (socket.session.bytesByPath.get(p.id) ?? 0) + (byPath.get(p.local) ?? 0));
    }
    socket.destroy();
    return byPath;
  }

  it('latency first: a small-message session stays on the path with the lower delay', async () => {
    const random = seededRandom(3);
    // Every packet on the slow uplink waits 60 ms more.
    const client = await connect({ reorderRate: 1, reorderDelayMs: 60, random }, counters());
    const slow = client.association.pathSummary().find((p) => p.local === '127.0.0.3')!;
    const fast = client.association.pathSummary().find((p) => p.local === '127.0.0.2')!;
    expect(slow.srttMs).toBeGreaterThan(fast.srttMs);
    const split = await trickle(
      client,
      {
        semantics: 'unreliable-unordered',
        priorities: ['latency', 'throughput'],
        policy: { latencyVsThroughput: 1 },
      },
      100,
      5,
    );
    const total = split.get('127.0.0.2')! + split.get('127.0.0.3')!;
    expect(total).toBeGreaterThan(0);
    expect(split.get('127.0.0.3')! / total).toBeLessThan(0.1);
  });

  it('loss first, unreliable: on lossy paths, messages are duplicated onto a second path', async () => {
    const random = seededRandom(4);
    // Both uplinks lose 5%: one copy alone misses the residual-loss target.
    const client = await connect({ dropRate: 0.05, random }, counters(), true);
    const socket = client.openMessages({
      target: 'echo',
      semantics: 'unreliable-unordered',
      priorities: ['loss', 'throughput'],
      policy: { lossVsThroughput: 1 },
    });
    for (let i = 0; i < 200; i++) {
      socket.send(Buffer.alloc(200, i));
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 2));
    }
    await new Promise((r) => setTimeout(r, 100));
    const stats = socket.stats;
    expect(stats.queued).toBe(200);
    expect(stats.copiesSent).toBeGreaterThan(stats.queued);
    socket.destroy();
  });

  it('application feedback against one path moves a throughput session off it', async () => {
    const client = await connect(undefined, counters());
    const lte = client.association.pathSummary().find((p) => p.local === '127.0.0.3')!;
    const socket = client.openMessages({
      target: 'echo',
      semantics: 'reliable-unordered',
      priorities: ['throughput'],
    });
    socket.on('error', () => undefined);
    const sendBurst = async (): Promise<void> => {
      for (let i = 0; i < 300; i++) {
        if (!socket.send(Buffer.alloc(1000, i)))
          await new Promise<void>((r) => socket.once('drain', () => r()));
        if (i % 30 === 29) await new Promise((r) => setTimeout(r, 1));
      }
    };
    await sendBurst();
    const before = socket.session.bytesByPath.get(lte.id) ?? 0;
    expect(before).toBeGreaterThan(0);
    socket.feedback({ objective: 'throughput', pathId: lte.id, severity: 1 });
    await sendBurst();
    const after = (socket.session.bytesByPath.get(lte.id) ?? 0) - before;
    if (process.env.DBG_FB) console.log('feedback split', before, after);
    // Credit the path had banked still drains, then it gets nothing while the report lasts.
    expect(after).toBeLessThan(before * 0.5);
    socket.destroy();
  });
});
