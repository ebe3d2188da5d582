import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const RENDERER_OUT = join(root, 'out/renderer');
const LOCK = join(root, 'out/.renderer-build.lock');

function newest(path: string): number {
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  let m = 0;
  for (const name of readdirSync(path)) m = Math.max(m, newest(join(path, name)));
  return m;
}

function builtAt(): number {
  try {
    return statSync(join(RENDERER_OUT, 'index.html')).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Builds the renderer with vite when its sources (or the contract) are newer than the
 * build, so that `npm test` always drives the current UI. A lock folder keeps two test
 * files from building at once.
 */
export async function ensureRendererBuilt(): Promise<void> {
  const sources = Math.max(
    newest(join(root, 'renderer/src')),
    newest(join(root, 'renderer/index.html')),
    newest(join(root, 'renderer/vite.config.ts')),
    newest(join(root, 'core/host/contract.ts')),
  );
  if (builtAt() > sources) return;
  mkdirSync(join(root, 'out'), { recursive: true });
  for (let waited = 0; ; waited += 200) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock older than two minutes belongs to a build that died.
      if (Date.now() - statSync(LOCK).mtimeMs > 120_000) rmdirSync(LOCK);
      if (waited > 120_000) throw new Error('renderer build lock held for two minutes');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (builtAt() > sources) return;
    await build({ configFile: join(root, 'renderer/vite.config.ts'), logLevel: 'warn' });
  } finally {
    rmdirSync(LOCK);
  }
}
