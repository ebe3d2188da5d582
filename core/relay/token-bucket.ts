import { systemClock, type Clock } from '../util/clock.js';

/**
 * A token bucket (one per relay client): `rate` bytes per second, bursts up to
 * `burst` bytes. Bytes are taken after the fact, so the balance may go negative; the
 * caller then waits `delayMs()` before it reads more, which keeps the long-run rate
 * without splitting chunks.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly clock: Clock = systemClock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
  }

  /** Takes `bytes`; returns how long to wait (ms) before taking more, 0 when none. */
  take(bytes: number): number {
    this.refill();
    this.tokens -= bytes;
    return this.delayMs();
  }

  /** Time until the balance is positive again. */
  delayMs(): number {
    this.refill();
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate;
  }
}
