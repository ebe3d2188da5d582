import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = process.cwd();

describe('electron bundle (electron/build.ts)', () => {
  it('builds main and a self-contained preload that requires nothing but electron', () => {
    execFileSync(process.execPath, ['--import', 'tsx', join(root, 'electron/build.ts')], {
      cwd: root,
      stdio: 'pipe',
    });
    const preload = readFileSync(join(root, 'out/app/electron/preload.cjs'), 'utf8');
    const required = [...preload.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);
    // A sandboxed preload may require only a few built-ins; ours needs only electron.
    expect(new Set(required)).toEqual(new Set(['electron']));
    expect(preload).toContain('exposeInMainWorld');
    // main parses as an ES module (it cannot run here: there is no Electron binary).
    execFileSync(process.execPath, ['--check', join(root, 'out/app/electron/main.js')]);
  });
});
