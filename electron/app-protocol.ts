import { extname, normalize, resolve, sep } from 'node:path';
import { APP_SCHEME } from './window-policy.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/**
 * Maps a `braid-app://dashboard/<path>` request to a file of the built renderer, or
 * undefined when it is another host, another scheme, or leaves the folder. Electron's
 * guidance is to serve local content over a custom protocol instead of file://, where
 * every page could read every file.
 */
export function resolveAppFile(
  url: string,
  root: string,
): { file: string; type: string } | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== `${APP_SCHEME}:` || u.host !== 'dashboard') return undefined;
  let rel: string;
  try {
    rel = decodeURIComponent(u.pathname);
  } catch {
    return undefined;
  }
  if (rel === '/' || rel === '') rel = '/index.html';
  const base = resolve(root);
  const file = normalize(resolve(base, '.' + rel));
  if (!file.startsWith(base + sep)) return undefined;
  return { file, type: TYPES[extname(file)] ?? 'application/octet-stream' };
}
