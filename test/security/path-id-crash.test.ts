/**
 * SECURITY.md, threat 1/2 (fixed): one datagram that names a live association (its id
 * is in every packet's clear header) with a path id above 2^32-1 reaches
 * Association.acceptJoin, whose secrets.pathKeys() throws BRAID_ERR_USAGE for such an
 * id; the throw escapes the UDP 'message' handler (and the TCP data 'data' handler)
 * and the relay process exited. The relay runs as a child process here so that a
 * crash cannot take the test runner with it. acceptJoin now refuses a path id the
 * keys cannot have before deriving keys.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import { createLogger } from '../../core/util/log.js';
import { writeHeader } from '../../core/wire/packet-header.js';
import { probeUdp } from './support/on-path.js';

const quiet = createLogger({ level: 'silent' });

async function spawnRelay(stateDir: string): Promise<{ child: ChildProcess; invite: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'core/cli/main.ts',
      'relay',
      '--state',
      stateDir,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--stop-on-stdin-end',
    ],
    { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, BRAID_LOG: 'silent' } },
  );
  const lines = createInterface({ input: child.stdout });
  const invite = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`relay exited early (${code})`)));
    lines.on('line', (line) => {
      const m = /^invite [^:]+: (braid:\/\/\S+)$/.exec(line);
      if (m !== null) resolve(m[1]!);
    });
  });
  return { child, invite };
}

describe('a path id the keys cannot have', () => {
  const dir = mkdtempSync(join(tmpdir(), 'braid-crash-'));
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.stdin?.end();
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('does not take the relay down when sent in one UDP datagram with a stolen association id', async () => {
    const relay = await spawnRelay(dir);
    child = relay.child;
    const exited = new Promise<number | null>((r) => relay.child.once('exit', (c) => r(c)));
    const connected = await BraidClient.connect({
      invite: relay.invite,
      via: ['127.0.0.2'],
      logger: quiet,
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    const client = connected.client;
    const port = Number(client.association.pathSummary()[0]!.remote.split(':')[1]);
    const packet = Buffer.alloc(80);
    const len = writeHeader(packet, 0, client.association.id, 2 ** 40, 0);
    await probeUdp(port, [packet.subarray(0, len + 40)], '127.0.0.9');
    const outcome = await Promise.race([
      exited.then((code) => `relay exited with ${code}`),
      new Promise<string>((r) => setTimeout(() => r('alive'), 1000)),
    ]);
    client.close();
    expect(outcome).toBe('alive');
  });
});
