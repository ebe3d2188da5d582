import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINE_NODE_FLAGS } from '../../../core/util/engine-flags.js';
import { nodeArgs } from '../../lab/baselines.js';

const root = process.cwd();

/** Size of V8's young generation (both semi-spaces) after churning short-lived objects. */
function youngGenerationBytes(flags: readonly string[]): number {
  const script = `
    const v8 = require('node:v8');
    const keep = [];
    for (let i = 0; i < 2e6; i++) {
      const o = { i, b: Buffer.allocUnsafe(16) };
      if (i % 50 === 0) { keep.push(o); if (keep.length > 20000) keep.shift(); }
    }
    const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
    process.stdout.write(String(s.space_size));`;
  return Number(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' }));
}

describe('engine V8 flags (core/util/engine-flags.ts)', () => {
  it('every launcher of the engine starts node with them', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    for (const script of ['braid', 'demo', 'dashboard', 'bench', 'soak', 'resources']) {
      for (const flag of ENGINE_NODE_FLAGS) expect(pkg.scripts[script], script).toContain(flag);
    }
    const shebang = readFileSync(join(root, 'bin/braid.mjs'), 'utf8').split('\n')[0]!;
    expect(shebang.startsWith('#!/usr/bin/env -S node ')).toBe(true);
    for (const flag of ENGINE_NODE_FLAGS) expect(shebang.split(' ')).toContain(flag);
    const unit = readFileSync(join(root, 'assets/braid-relay.service'), 'utf8');
    const execStart = unit.split('\n').find((l) => l.startsWith('ExecStart='))!;
    for (const flag of ENGINE_NODE_FLAGS) expect(execStart.split(' ')).toContain(flag);
    // The lab measures Braid as it is launched.
    expect(nodeArgs().slice(0, ENGINE_NODE_FLAGS.length)).toEqual([...ENGINE_NODE_FLAGS]);
  });

  it('bin/braid.mjs starts through its shebang', () => {
    const out = execFileSync(join(root, 'bin/braid.mjs'), ['--help'], { encoding: 'utf8' });
    expect(out).toContain('Usage');
  });

  it('bound the young generation, which grows past that without them', () => {
    // 4 MB semi-spaces: new space is two of them. The default lets it grow to 32 MB
    // under the same churn, so the bound is the flag's doing.
    expect(youngGenerationBytes(ENGINE_NODE_FLAGS)).toBeLessThanOrEqual(8 * 1024 * 1024);
    expect(youngGenerationBytes([])).toBeGreaterThan(8 * 1024 * 1024);
  });
});
