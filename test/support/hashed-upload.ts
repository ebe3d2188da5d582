import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Bytes per write of writeNumberedBlocks (a send queue may exceed its bound by one). */
export const NUMBERED_BLOCK_BYTES = 64 * 1024;

/**
 * Writes `total` bytes of 64 KiB blocks (random, each numbered by its offset so that a
 * misplaced block changes the digest), waiting for 'drain', then ends the stream.
 * Returns the SHA-256 of what was written, for the receiver's digest to match.
 */
export async function writeNumberedBlocks(
  stream: Writable,
  total: number,
  /** false: leave the stream open after the last block (a response on a kept-alive stream). */
  end = true,
): Promise<string> {
  const hash = createHash('sha256');
  const block = randomBytes(NUMBERED_BLOCK_BYTES);
  for (let sent = 0; sent < total; sent += block.length) {
    block.writeUInt32BE(sent, 0);
    hash.update(block);
    if (!stream.write(Buffer.from(block))) await once(stream, 'drain');
  }
  if (end) stream.end();
  return hash.digest('hex');
}
