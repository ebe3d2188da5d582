import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The advisory check of SECURITY.md "Dependencies", kept true while `npm audit` cannot
 * reach the registry's advisory endpoint from the development machines: the installed
 * ws is past its published advisories, and no React Server Components package (the
 * 2025–2026 React advisories) is in the tree.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const version = (pkg: string): number[] =>
  (
    JSON.parse(readFileSync(`${root}node_modules/${pkg}/package.json`, 'utf8')) as {
      version: string;
    }
  ).version
    .split('.')
    .map(Number);
const atLeast = (v: number[], min: number[]): boolean => {
  for (let i = 0; i < min.length; i++) {
    if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  }
  return true;
};

describe('production dependencies against known advisories', () => {
  it('ws is at 8.21.3 or later (GHSA-3h5v-q93c-6h6q, GHSA-96hv-2xvq-fx4p, GHSA-58qx-3vcg-4xpx)', () => {
    expect(atLeast(version('ws'), [8, 21, 3]), version('ws').join('.')).toBe(true);
  });

  it('no react-server-dom-* package is installed (CVE-2025-55182 and follow-ups)', () => {
    for (const pkg of ['webpack', 'parcel', 'turbopack']) {
      expect(existsSync(`${root}node_modules/react-server-dom-${pkg}`), pkg).toBe(false);
    }
  });
});
