import { BraidError } from '../util/errors.js';

const WORD_BITS = 32;

/**
 * Sliding replay window over a path's packet numbers (RFC 4303 §3.4.3): each packet
 * number is accepted once; one `size` or more below the largest seen is refused
 * because it can no longer be told apart from a replay. The bitmap is a ring of
 * 32-bit words indexed by packet number, and moving the window clears whole words
 * (the RFC 6479 layout WireGuard uses), so an advance costs at most one word per 32
 * packet numbers and never shifts the bitmap. Packet numbers range over 0..2^53-1,
 * so word indices are computed with division, not bit shifts.
 *
 * Check with `has` before opening a packet and `add` only after the AEAD verified it
 * (DESIGN §3), so a forged packet can neither move the window nor mark a number seen.
 */
export class ReplayWindow {
  /** One word more than `size` needs: the word holding the oldest number still in
   * the window is never the one being cleared for a new number. */
  private readonly words: Uint32Array;
  private largest_ = -1;

  constructor(readonly size = 4096) {
    if (!Number.isSafeInteger(size) || size < 1 || size > 1 << 24) {
      throw new BraidError('BRAID_ERR_USAGE', 'replay window size must lie in 1..2^24', {
        value: size,
      });
    }
    this.words = new Uint32Array(Math.ceil(size / WORD_BITS) + 1);
  }

  /** Largest packet number added; -1 before the first. */
  get largest(): number {
    return this.largest_;
  }

  /**
   * True when `pn` was already added, or lies `size` or more below the largest and so
   * cannot be told apart from a replay; also true for a value that is not a packet
   * number at all. False for anything above the largest.
   */
  has(pn: number): boolean {
    if (!(Number.isSafeInteger(pn) && pn >= 0)) return true;
    if (pn > this.largest_) return false;
    if (this.largest_ - pn >= this.size) return true;
    const word = Math.floor(pn / WORD_BITS) % this.words.length;
    return (this.words[word]! & (1 << (pn % WORD_BITS))) !== 0;
  }

  /** Marks `pn` seen, moving the window when it is the new largest. Numbers too old
   * to track (see `has`) are ignored. */
  add(pn: number): void {
    if (!(Number.isSafeInteger(pn) && pn >= 0)) return;
    const count = this.words.length;
    const index = Math.floor(pn / WORD_BITS);
    if (pn > this.largest_) {
      // Words between the old largest's and the new one's held numbers one full ring
      // earlier, all now older than the window.
      const current = this.largest_ < 0 ? -1 : Math.floor(this.largest_ / WORD_BITS);
      const stale = Math.min(index - current, count);
      for (let i = 1; i <= stale; i++) this.words[(index - stale + i) % count] = 0;
      this.largest_ = pn;
    } else if (this.largest_ - pn >= this.size) {
      return;
    }
    this.words[index % count]! |= 1 << (pn % WORD_BITS);
  }
}
