import { BraidError } from '../util/errors.js';

export interface IdleProberConfig {
  /** A path that sent nothing for this long is idle. */
  idleAfterMs?: number;
  /** Wanted spacing of probes on an idle path (figures stay this fresh). */
  intervalMs?: number;
  /** Hard budget per idle path, bits per second, counting whole probe packets. */
  budgetBitsPerSecond?: number;
  /**
   * Bytes one probe costs on the wire: the protected packet plus IP/UDP headers
   * (Braid header 1+8+pathId+8, PROBE frame 1+8+8, AEAD tag 16, IPv4/UDP 28 ≈ 80).
   */
  probeBytes?: number;
}

export const DEFAULT_IDLE_PROBER: Required<IdleProberConfig> = {
  idleAfterMs: 1000,
  intervalMs: 2000,
  budgetBitsPerSecond: 1000,
  probeBytes: 96,
};

/**
 * Decides when an idle path gets a PROBE so that its RTT, loss and jitter figures stay
 * fresh (paper §III-B "the session layer periodically evaluates the service received
 * on each path") at a bounded cost: a token bucket of `budgetBitsPerSecond` whose
 * depth is one probe, so over any interval T a path's probes never exceed
 * budget·T + one probe — at the default 1 kbit/s, 125 bytes a second. Every probe sent
 * is charged at its real size, so a larger packet delays the next one. Data traffic
 * on the path is not charged: a busy path measures itself and is not probed.
 */
export class IdleProber {
  private readonly config: Required<IdleProberConfig>;
  /** Bytes per ms. */
  private readonly refillRate: number;
  private tokens: number;
  private tokensAt: number;
  private lastActivity: number;
  private lastProbe = -Infinity;
  probesSent = 0;
  probeBytesSent = 0;

  constructor(now: number, config: IdleProberConfig = {}) {
    this.config = { ...DEFAULT_IDLE_PROBER, ...config };
    const c = this.config;
    for (const [name, value] of Object.entries(c)) {
      if (!(Number.isFinite(value) && value > 0)) {
        throw new BraidError('BRAID_ERR_CONFIG', `idle prober ${name} must be positive`, {
          value,
        });
      }
    }
    if (c.probeBytes * 8 > c.budgetBitsPerSecond * 60) {
      throw new BraidError('BRAID_ERR_CONFIG', 'idle probe budget below one probe a minute', {
        value: c.budgetBitsPerSecond,
      });
    }
    this.refillRate = c.budgetBitsPerSecond / 8 / 1000;
    this.tokens = c.probeBytes;
    this.tokensAt = now;
    this.lastActivity = now;
  }

  /** An ack-eliciting packet other than a PROBE left on the path: it measures the path too. */
  onSent(now: number): void {
    this.lastActivity = now;
  }

  /** A PROBE left on this path, `bytes` on the wire. */
  onProbeSent(now: number, bytes: number): void {
    this.refill(now);
    this.tokens -= bytes;
    this.lastProbe = now;
    this.probesSent++;
    this.probeBytesSent += bytes;
  }

  private refill(now: number): void {
    if (now > this.tokensAt) {
      this.tokens = Math.min(
        this.config.probeBytes,
        this.tokens + (now - this.tokensAt) * this.refillRate,
      );
      this.tokensAt = now;
    }
  }

  /** Whether a probe should go now. */
  due(now: number): boolean {
    return this.nextDue(now) <= now;
  }

  /** When the next probe is due (for arming the association's timer). */
  nextDue(now: number): number {
    const c = this.config;
    const idleAt = this.lastActivity + c.idleAfterMs;
    const spacedAt = this.lastProbe + c.intervalMs;
    this.refill(now);
    const missing = c.probeBytes - this.tokens;
    const budgetAt = missing <= 0 ? now : now + missing / this.refillRate;
    return Math.max(idleAt, spacedAt, budgetAt);
  }
}
