/**
 * Sliding replay window over packet numbers (RFC 4303 §3.4.3): a packet number is
 * accepted once; anything older than the window is refused because it can no
 * longer be told apart from a replay. Check with `has` before decrypting, `add`
 * only after the AEAD verified, so forged packets cannot move the window.
 */
export class ReplayWindow {
  private readonly bits: Uint32Array;
  private largest_ = -1;

  constructor(private readonly size = 4096) {
    this.bits = new Uint32Array(Math.ceil(size / 32));
  }

  get largest(): number {
    return this.largest_;
  }

  private bit(pn: number): [number, number] {
    const slot = pn % this.size;
    return [slot >>> 5, 1 << (slot & 31)];
  }

  has(pn: number): boolean {
    if (pn > this.largest_) return false;
    if (this.largest_ - pn >= this.size) return true;
    const [word, mask] = this.bit(pn);
    return (this.bits[word]! & mask) !== 0;
  }

  add(pn: number): void {
    if (pn > this.largest_) {
      const gap = pn - this.largest_;
      if (gap >= this.size) this.bits.fill(0);
      else
        for (let p = this.largest_ + 1; p < pn; p++) {
          const [w, m] = this.bit(p);
          this.bits[w]! &= ~m;
        }
      this.largest_ = pn;
    } else if (this.largest_ - pn >= this.size) {
      return;
    }
    const [word, mask] = this.bit(pn);
    this.bits[word]! |= mask;
  }
}
