import { describe, expect, it } from 'vitest';
import { runTransfer } from '../../core/cli/transfer.js';
import { createLogger } from '../../core/util/log.js';
import { impair, newCounters, seededRandom } from '../support/impaired-subflow.js';
import { useRelay } from '../support/relay-fixture.js';

const quiet = createLogger({ level: 'error' });

describe('striping a reliable-ordered session over several paths on loopback', () => {
  const relayOf = useRelay();

  it('moves 200 MB over two UDP paths and one TCP path with matching SHA-256, each path carrying at least 10%', async () => {
    const result = await runTransfer({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3', '127.0.0.4'],
      transports: ['udp', 'udp', 'tcp'],
      bytes: 200_000_000,
      logger: quiet,
    });
    expect(result.bytes).toBe(200_000_000);
    expect(result.verified).toBe(true);
    expect(result.paths.map((p) => p.kind).sort()).toEqual(['tcp', 'udp', 'udp']);
    expect(new Set(result.paths.map((p) => p.local))).toEqual(
      new Set(['127.0.0.2', '127.0.0.3', '127.0.0.4']),
    );
    for (const p of result.paths)
      expect(p.share, `path ${p.id} (${p.kind} ${p.local})`).toBeGreaterThanOrEqual(0.1);
  });

  it('delivers every byte exactly once and in order when one path drops 5% of its packets and another reorders', async () => {
    const counters = newCounters();
    const random = seededRandom(42);
    const result = await runTransfer({
      invite: relayOf().invite,
      // Two UDP paths only, so both impaired paths must carry the stream.
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      bytes: 30_000_000,
      logger: quiet,
      // Internet-sized packets: ~20,000 of them, so loss recovery really works.
      config: { loopbackUdpPacketSize: 1452 },
      wrapSubflow: (subflow, plan) =>
        plan.localAddress === '127.0.0.2'
          ? impair(subflow, { dropRate: 0.05, random }, counters)
          : impair(subflow, { reorderRate: 0.2, reorderDelayMs: 3, random }, counters),
    });
    expect(counters.dropped).toBeGreaterThan(100);
    expect(counters.reordered).toBeGreaterThan(100);
    expect(result.verified).toBe(true);
    expect(result.bytes).toBe(30_000_000);
    const lossy = result.paths.find((p) => p.local === '127.0.0.2')!;
    expect(lossy.lostPackets).toBeGreaterThan(0);
    expect(lossy.bytes).toBeGreaterThan(0);
  });
});
