/**
 * Time is injected (STYLE §5): estimators, congestion control and timers read a
 * Clock so that a test can simulate minutes of traffic in milliseconds.
 */
export interface Clock {
  /** Monotonic time in milliseconds (fractional). */
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };

/** A clock a test moves by hand. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

/** A source of randomness in [0, 1), injected like the clock. */
export type Random = () => number;
export const systemRandom: Random = Math.random;
