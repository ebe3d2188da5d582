import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeArgs } from './baselines.js';

const braidBulk = fileURLToPath(new URL('./tools/braid-bulk.ts', import.meta.url));
const homes: string[] = [];

afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

/**
 * The lab's Braid server on loopback, with TMPDIR of its own so that the one state
 * folder it creates can be found; resolves once it printed its invite.
 */
async function startServer() {
  const home = mkdtempSync(join(tmpdir(), 'braid-lab-relay-test-'));
  homes.push(home);
  const child = spawn(process.execPath, [...nodeArgs(braidBulk), 'server', '--host', '127.0.0.1'], {
    env: { ...process.env, TMPDIR: home },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  expect((JSON.parse(line) as { event: string }).event).toBe('listening');
  const folders = readdirSync(home).filter((n) => n.startsWith('braid-lab-relay-'));
  expect(folders).toHaveLength(1);
  return { child, folder: join(home, folders[0]!) };
}

describe('lab relay (tools/lab-relay.ts)', () => {
  it.each([
    ['the end of stdin', 0],
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('removes its state folder at %s', async (how, code) => {
    const { child, folder } = await startServer();
    expect(existsSync(folder)).toBe(true);
    const exited = once(child, 'exit');
    if (how === 'the end of stdin') child.stdin.end();
    else child.kill(how);
    expect((await exited)[0]).toBe(code);
    expect(existsSync(folder)).toBe(false);
  });
});
