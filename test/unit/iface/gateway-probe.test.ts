import { describe, expect, it } from 'vitest';
import { findExecutable, probeGateway, runCommand } from '../../../core/iface/gateway-probe.js';

const ping = await findExecutable('ping');
const ip = await findExecutable('ip');
const root = process.getuid?.() === 0;

describe('probeGateway', () => {
  it.skipIf(ping === null || !root || process.platform !== 'linux')(
    'finds a gateway that answers ICMP echo reachable (loopback as the gateway)',
    async () => {
      const r = await probeGateway('lo', '127.0.0.1', { ping, ip });
      expect(r).toMatchObject({ reachable: true, method: 'icmp' });
    },
  );

  it('says unknown, not false, when it has no way to probe', async () => {
    const r = await probeGateway('eth9', '192.0.2.1', { ping: null, ip: null });
    expect(r.reachable).toBeUndefined();
    expect(r.method).toBe('none');
  });

  it.skipIf(ping === null)('says unknown when ping cannot run on the device at all', async () => {
    // ping exits 2 (no such device): no evidence either way, and no neighbour entry.
    const r = await probeGateway('braid-none0', '192.0.2.1', { ping, ip });
    expect(r.reachable).toBeUndefined();
    expect(r.detail).toMatch(/exit 2/);
  });
});

describe('runCommand', () => {
  it('returns a non-zero exit as a result and a missing program as a coded error', async () => {
    expect((await runCommand('/bin/sh', ['-c', 'exit 4'])).exitCode).toBe(4);
    await expect(runCommand('/nonexistent/x', [])).rejects.toMatchObject({
      code: 'BRAID_ERR_INTERNAL',
    });
  });
});
