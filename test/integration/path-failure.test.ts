import { describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import { runTransfer } from '../../core/cli/transfer.js';
import { createLogger } from '../../core/util/log.js';
import { impair, newCounters, seededRandom } from '../support/impaired-subflow.js';
import { useRelay } from '../support/relay-fixture.js';

const quiet = createLogger({ level: 'error' });
const fresh = newCounters;

describe('paths that fail', () => {
  const relayOf = useRelay();

  it('falls back to TCP by itself on an uplink where UDP is blocked', async () => {
    const counters = fresh();
    const connected = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp'],
      logger: quiet,
      config: { joinTimeoutMs: 600 },
      wrapSubflow: (subflow, plan) =>
        plan.localAddress === '127.0.0.2' && subflow.kind === 'udp'
          ? impair(subflow, { blackhole: true, random: seededRandom(1) }, counters)
          : subflow,
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    const paths = connected.client.association.pathSummary();
    connected.client.close();
    expect(counters.dropped).toBeGreaterThan(0);
    const live = paths.filter((p) => p.state === 'active');
    expect(live.map((p) => `${p.local}/${p.kind}`).sort()).toEqual([
      '127.0.0.2/tcp',
      '127.0.0.3/udp',
    ]);
    expect(paths.find((p) => p.local === '127.0.0.2' && p.kind === 'udp')?.state).toBe('failed');
  });

  it('loses no byte when a path dies mid-transfer: its data is reinjected on the others', async () => {
    const counters = fresh();
    const result = await runTransfer({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3', '127.0.0.4'],
      transports: ['udp', 'udp', 'tcp'],
      bytes: 50_000_000,
      logger: quiet,
      wrapSubflow: (subflow, plan) =>
        plan.localAddress === '127.0.0.2'
          ? impair(subflow, { dieAfterPackets: 300, random: seededRandom(2) }, counters)
          : subflow,
    });
    expect(result.verified).toBe(true);
    const dead = result.paths.find((p) => p.local === '127.0.0.2')!;
    expect(dead.state).toBe('failed');
    expect(dead.bytes).toBeGreaterThan(0);
  });

  it('keeps the association running after the TLS control connection that carried the handshake is gone', async () => {
    const connected = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'tcp'],
      logger: quiet,
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    const client = connected.client;
    client.controlSocket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const stream = client.openStream({ target: 'echo' });
    const payload = Buffer.alloc(2_000_000, 0x5a);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((r) => stream.on('end', r));
    stream.end(payload);
    await ended;
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    expect(client.association.state).toBe('active');
    client.close();
  });
});
