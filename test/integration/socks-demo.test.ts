/**
 * `npm run demo` (the README's first command), its proxy part run for a few seconds
 * with stdout not a terminal: a bulk download and a UDP call from two processes go
 * through the SOCKS5 proxy, and the live table prints one line a second.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const main = join(import.meta.dirname, '../../core/cli/main.ts');

describe.skipIf(process.platform === 'win32')('braid demo, proxy part', () => {
  it('carries a bulk download and a UDP call from two processes and prints the live table every second', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', main, 'demo', '--bytes', '1M', '--seconds', '5'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
    // No ANSI cursor movement when stdout is not a terminal.
    expect(stdout).not.toContain('\x1b[');
    const rows = stdout.split('\n').filter((l) => /^\[\d+s\] uplinks: /.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(4);
    const last = rows.at(-1)!;
    // The three uplinks each show their measures. A row lists the paths live at that
    // second: under load the TCP path may be between a stall and its replacement in
    // the last row, so the three are looked for over the run's rows.
    const measured =
      /(127\.0\.0\.\d\/(?:udp|tcp)) rtt [\d.]+ ms jitter [\d.]+ ms loss [\d.]+% [\d.]+ Mbit\/s/g;
    const uplinks = new Set(rows.flatMap((r) => [...r.matchAll(measured)].map((m) => m[1])));
    expect([...uplinks].sort(), stdout).toHaveLength(3);
    expect(last.match(measured)?.length ?? 0, last).toBeGreaterThanOrEqual(2);
    const download = /download\.mjs reliable-ordered ([\d.]+) (kB|MB)/.exec(last);
    const call =
      /video-call\.mjs unreliable-ordered [\d.]+ kB (\d+) ok, (\d+) late, (\d+) lost of (\d+)/.exec(
        last,
      );
    expect(download, last).not.toBeNull();
    expect(call, last).not.toBeNull();
    const downloaded = Number(download![1]) * (download![2] === 'MB' ? 1e6 : 1e3);
    expect(downloaded, last).toBeGreaterThan(100_000);
    const [ok, late, lost, sent] = call!.slice(1).map(Number) as [number, number, number, number];
    expect(sent).toBeGreaterThan(50); // at least a second's worth, under load
    expect(ok + late).toBeGreaterThan(sent / 2);
    expect(ok + late + lost).toBeLessThanOrEqual(sent);
    // The flows progressed while both ran: the counts grow from row to row.
    const downloads = rows.map(
      (r) => /download\.mjs reliable-ordered ([\d.]+ (kB|MB))/.exec(r)?.[1],
    );
    const calls = rows.map((r) => /of (\d+)/.exec(r)?.[1]);
    expect(new Set(downloads.filter((d) => d !== undefined)).size).toBeGreaterThanOrEqual(3);
    expect(new Set(calls.filter((c) => c !== undefined)).size).toBeGreaterThanOrEqual(3);
  }, 90_000);
});
