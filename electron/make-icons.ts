import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { TRAY_ICON_STATES, trayIconFile, type TrayIconState } from './tray-state.js';

/**
 * Draws the tray icons (one per TrayIconState, 16 px and @2x 32 px) and the app icon
 * into assets/ as PNGs, from code, so they can be regenerated and reviewed:
 * `npx tsx electron/make-icons.ts`. Three braided strands in a ring; the ring's
 * colour and mark say the state (green ok, amber degraded, grey with a bar for
 * bypass, hollow red for offline).
 */
type Rgba = [number, number, number, number];

const COLOURS: Record<TrayIconState, Rgba> = {
  ok: [31, 138, 76, 255],
  degraded: [230, 140, 0, 255],
  bypass: [120, 128, 138, 255],
  offline: [192, 57, 43, 255],
};

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** PNG (RFC 2083): 8-bit RGBA, no interlace, filter 0 on every row. */
export function encodePng(size: number, pixel: (x: number, y: number) => Rgba): Buffer {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const p = pixel(x, y);
      raw.set(p, y * (size * 4 + 1) + 1 + x * 4);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Coverage of a pixel by a shape, 4×4 supersampled so edges are smooth at 16 px. */
function cover(
  x: number,
  y: number,
  inside: (u: number, v: number) => boolean,
  size: number,
): number {
  let n = 0;
  for (let i = 0; i < 4; i++)
    for (let j = 0; j < 4; j++)
      if (inside((x + (i + 0.5) / 4) / size, (y + (j + 0.5) / 4) / size)) n++;
  return n / 16;
}

function icon(state: TrayIconState, size: number): Buffer {
  const [r, g, b] = COLOURS[state];
  const ring = (u: number, v: number): boolean => {
    const d = Math.hypot(u - 0.5, v - 0.5);
    return state === 'offline' ? d <= 0.47 && d >= 0.36 : d <= 0.47;
  };
  // Three strands: sine waves across the disc, a third of a period apart.
  const strands = (u: number, v: number): boolean =>
    Math.hypot(u - 0.5, v - 0.5) < 0.36 &&
    [0, 1, 2].some(
      (k) => Math.abs(v - (0.5 + 0.16 * Math.sin((u * 2 + k / 3) * Math.PI * 2))) < 0.045,
    );
  const bar = (u: number, v: number): boolean => state === 'bypass' && Math.abs(u + v - 1) < 0.07;
  return encodePng(size, (x, y) => {
    const disc = cover(x, y, ring, size);
    const mark = cover(x, y, (u, v) => strands(u, v) || bar(u, v), size);
    if (state === 'offline') {
      const a = Math.max(disc, mark);
      return [r, g, b, Math.round(a * 255)];
    }
    // White strands over the coloured disc.
    const mix = (c: number): number => Math.round(c * (1 - mark) + 255 * mark);
    return [mix(r), mix(g), mix(b), Math.round(disc * 255)];
  });
}

const assets = fileURLToPath(new URL('../assets', import.meta.url));
for (const state of TRAY_ICON_STATES) {
  const file = trayIconFile(state);
  writeFileSync(join(assets, file), icon(state, 16));
  writeFileSync(join(assets, file.replace('.png', '@2x.png')), icon(state, 32));
}
writeFileSync(join(assets, 'icon.png'), icon('ok', 512));
process.stdout.write(`icons written to ${assets}\n`);
