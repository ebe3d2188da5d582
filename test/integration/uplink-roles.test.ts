import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BraidClient } from '../../core/api/client.js';
import type { EngineEvent } from '../../core/api/engine-events.js';
import { runTransfer } from '../../core/cli/transfer.js';
import { DataCapLedger } from '../../core/paths/data-caps.js';
import { createLogger } from '../../core/util/log.js';
import { useRelay } from '../support/relay-fixture.js';

const quiet = createLogger({ level: 'error' });

async function whenWritten(written: () => number, bytes: number): Promise<void> {
  while (written() < bytes) await new Promise((r) => setTimeout(r, 5));
}

describe('uplink roles and data caps on loopback', () => {
  const relayOf = useRelay();
  const dir = mkdtempSync(join(tmpdir(), 'braid-roles-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a backup uplink carries nothing while the primary works, and takes over when it goes', async () => {
    let atFailover = -1;
    let client: BraidClient | undefined;
    const result = await runTransfer({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      bytes: 40_000_000,
      logger: quiet,
      onStart: (c, written) => {
        client = c;
        c.setUplinkRole('127.0.0.3', 'backup');
        void whenWritten(written, 20_000_000).then(() => {
          const backup = c.association.pathSummary().find((p) => p.local === '127.0.0.3')!;
          atFailover = backup.streamBytesSent;
          c.removeUplink('127.0.0.2', 'test: primary gone');
        });
      },
    });
    expect(result.verified).toBe(true);
    expect(client!.effectiveRole('127.0.0.3')).toBe('backup');
    // Before the primary went, the backup had carried (almost) nothing.
    expect(atFailover).toBeGreaterThanOrEqual(0);
    expect(atFailover).toBeLessThan(200_000);
    const backup = result.paths.find((p) => p.local === '127.0.0.3')!;
    expect(backup.bytes).toBeGreaterThan(15_000_000);
  });

  it('a never uplink carries no byte of data, even with the other uplink busy', async () => {
    const result = await runTransfer({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      bytes: 20_000_000,
      logger: quiet,
      onStart: (c) => c.setUplinkRole('127.0.0.3', 'never'),
    });
    expect(result.verified).toBe(true);
    const never = result.paths.find((p) => p.local === '127.0.0.3')!;
    expect(never.bytes).toBe(0);
  });

  it("the relay learns the role: a download avoids the client's backup uplink", async () => {
    const { BraidClient } = await import('../../core/api/client.js');
    const r = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      logger: quiet,
    });
    if (r.kind !== 'braid') throw new Error('expected Braid');
    const c = r.client;
    try {
      c.setUplinkRole('127.0.0.3', 'backup');
      // Let the PATH_STATUS reach the relay before the download starts.
      await new Promise((res) => setTimeout(res, 100));
      const stream = c.openStream({ target: 'source:600' });
      let bytes = 0;
      stream.on('data', (d: Buffer) => (bytes += d.length));
      await new Promise<void>((res, rej) => {
        stream.on('end', () => res());
        stream.on('error', rej);
      });
      stream.end();
      expect(bytes).toBeGreaterThan(10_000_000);
      const backup = c.association.pathSummary().find((p) => p.local === '127.0.0.3')!;
      expect(backup.streamBytesReceived).toBeLessThan(bytes * 0.02);
    } finally {
      c.close();
    }
  });

  it('a data cap warns at 80%, demotes the uplink to backup at 100%, and persists the account', async () => {
    const file = join(dir, 'caps.json');
    const ledger = new DataCapLedger({ file, logger: quiet });
    ledger.setCap('lte', 8_000_000);
    const events: EngineEvent[] = [];
    let capClient: BraidClient | undefined;
    const result = await runTransfer({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      bytes: 80_000_000,
      logger: quiet,
      onStart: (c) => {
        capClient = c;
        c.on('event', (e) => events.push(e));
        c.useDataCaps(ledger, (local) => (local === '127.0.0.3' ? 'lte' : 'wifi'), 20);
      },
    });
    expect(result.verified).toBe(true);
    const warning = events.findIndex((e) => e.type === 'cap-warning' && e.local === '127.0.0.3');
    const reached = events.findIndex((e) => e.type === 'cap-reached' && e.local === '127.0.0.3');
    expect(warning).toBeGreaterThanOrEqual(0);
    expect(reached).toBeGreaterThan(warning);
    expect(capClient!.effectiveRole('127.0.0.3')).toBe('backup');
    const capped = result.paths.find((p) => p.local === '127.0.0.3')!;
    // The capped uplink stopped taking new data soon after the cap (one counting
    // interval's overshoot), while the transfer went on over the other.
    expect(capped.bytes).toBeLessThan(30_000_000);
    const reloaded = new DataCapLedger({ file, logger: quiet });
    expect(reloaded.get('lte')!.usedBytes).toBeGreaterThanOrEqual(8_000_000);
    expect(reloaded.isCapped('lte')).toBe(true);
  });
});
