import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/**
 * Bundles the desktop shell for electron-builder (electron-builder.yml): main as one
 * ES module (the engine included, Electron external), the preload as one CommonJS
 * file, because a sandboxed preload cannot import anything but `electron`. The
 * renderer is built by vite into out/renderer (npm run build:renderer).
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'out/app/electron');

await build({
  entryPoints: [join(root, 'electron/main.ts')],
  outfile: join(out, 'main.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // ws's optional native helpers are loaded only if present; koffi (UDP segmentation
  // offload, core/transport/udp-gso.ts) is a native module that electron-builder
  // ships unpacked beside the bundle.
  external: ['electron', 'bufferutil', 'utf-8-validate', 'koffi'],
  banner: {
    // Bundled CommonJS dependencies (ws) call require(); give the ES module one.
    js: "import { createRequire as __braidRequire } from 'node:module'; const require = __braidRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

await build({
  entryPoints: [join(root, 'electron/preload.ts')],
  outfile: join(out, 'preload.cjs'),
  bundle: true,
  platform: 'browser',
  format: 'cjs',
  target: 'chrome130',
  external: ['electron'],
  logLevel: 'warning',
});

process.stdout.write(`built ${out}/main.js and preload.cjs\n`);
