import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const main = join(import.meta.dirname, '../../core/cli/main.ts');

function braid(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', main, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('braid command line', () => {
  it('explains every command in --help', () => {
    const r = braid('--help');
    expect(r.status).toBe(0);
    for (const command of [
      'braid demo',
      'braid relay',
      'braid send',
      '--via',
      '--transport',
      '--bytes',
      'invite',
      'BRAID_LOG',
    ]) {
      expect(r.stdout).toContain(command);
    }
  });

  it('refuses bad usage with exit code 2 and a message naming the problem', () => {
    const noInvite = braid('send', '--via', '127.0.0.2');
    expect(noInvite.status).toBe(2);
    expect(noInvite.stderr).toMatch(/needs an invite.*BRAID_ERR_USAGE/);
    const badTransport = braid('send', 'braid://x', '--via', '127.0.0.2', '--transport', 'sctp');
    expect(badTransport.status).toBe(2);
    expect(badTransport.stderr).toContain('unknown transport "sctp"');
    expect(braid('frobnicate').status).toBe(2);
  });

  it('rejects a malformed invite with BRAID_ERR_BAD_INVITE', () => {
    const r = braid('send', 'braid://127.0.0.1:1#zz', '--via', '127.0.0.2', '--bytes', '1k');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('BRAID_ERR_BAD_INVITE');
  });

  it('adds a client key to a relay state folder kept private to its owner', () => {
    const dir = mkdtempSync(join(tmpdir(), 'braid-cli-'));
    try {
      const state = join(dir, 'state');
      const r = braid('relay', '--state', state, '--add-client', 'laptop');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('added client key laptop');
      expect(statSync(join(state, 'clients.json')).mode & 0o077).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs as the `braid` that package.json installs, relay child and all', () => {
    const root = join(import.meta.dirname, '../..');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      bin: { braid: string };
    };
    const bin = join(root, pkg.bin.braid);
    expect(statSync(bin).mode & 0o111).not.toBe(0);
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('braid relay');
    const bad = run('send', '--via', '127.0.0.2');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('BRAID_ERR_USAGE');
    // The demo starts its relay as a child running the TypeScript sources: without
    // tsx's CLI around it, the child needs the loader passed on (it died at once).
    const demo = run('demo', '--bytes', '1M', '--skip-proxy');
    expect(demo.stderr).toBe('');
    expect(demo.status).toBe(0);
    expect(demo.stdout).toContain('SHA-256 matches');
  }, 90_000);
});
