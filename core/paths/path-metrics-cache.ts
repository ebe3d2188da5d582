import { BraidError } from '../util/errors.js';
import { usableResume, type ResumeSaved } from './careful-resume.js';

/**
 * Temporal sharing of congestion state between paths to the same peer address (RFC
 * 9040 §4, "TCP Control Block Interdependence"): when a path ends, what its controller
 * learned is kept for the next path between the same two addresses, so that the next
 * one does not have to rediscover it by overflowing the bottleneck.
 *
 * What is kept is the slow-start threshold: a new path starts with the usual initial
 * window and doubles it up to the threshold its predecessor learned, then grows as in
 * congestion avoidance. In the lab a 1 MB download on a fresh path lost ~20 % of its
 * Wi-Fi packets to slow start's overshoot of a one-BDP queue (120–130 of ~620). Linux
 * kept thresholds in tcp_metrics too, but since 5.6 does not by default
 * (net.ipv4.tcp_no_ssthresh_metrics_save = 1, as on the lab's kernel): a stale low
 * threshold caps every connection after it. Hence the threshold a path learns is from
 * its largest window, not its last (PathRecovery.learnedSsthresh), and a lower one
 * only moves the kept one halfway (record).
 *
 * Only thresholds that a loss set are kept (a path still in slow start, or under BBR,
 * has none). With them go the path's capacity and min RTT, from which the next path's
 * window may jump after one round trip (Careful Resume, careful-resume.ts). Entries
 * age out after `ttlMs` (an uplink's capacity changes), and the table holds at most
 * `maxEntries` (the oldest goes first): no memory grows with the number of peers seen.
 */
export interface PathMetricsCacheOptions {
  /** How long an entry is used after it was recorded (default 10 minutes). */
  ttlMs?: number;
  /** Entries kept at most (default 1024). */
  maxEntries?: number;
}

interface Entry {
  ssthresh: number | undefined;
  /** Careful Resume's saved_cwnd and saved_rtt, when the path measured them. */
  resume: ResumeSaved | undefined;
  at: number;
}

/** What an ending path learned (PathRecovery.learnedSsthresh, .learnedResume). */
export interface LearnedPath {
  /** Slow start's threshold for the next path (bytes). */
  ssthresh?: number;
  /** The window at the capacity it measured (bytes) and its min RTT (ms). */
  resume?: ResumeSaved;
}

export class PathMetricsCache {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  /** Insertion-ordered: the first key is the oldest record. */
  private readonly entries = new Map<string, Entry>();

  constructor(options: PathMetricsCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? 600_000;
    this.maxEntries = options.maxEntries ?? 1024;
    if (!(this.ttlMs > 0) || !Number.isFinite(this.ttlMs)) {
      throw new BraidError('BRAID_ERR_CONFIG', 'path metrics ttlMs must be a positive number', {
        value: this.ttlMs,
      });
    }
    if (!Number.isSafeInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new BraidError(
        'BRAID_ERR_CONFIG',
        'path metrics maxEntries must be a whole number >= 1',
        {
          value: this.maxEntries,
        },
      );
    }
  }

  /** Key of a path: its transport and the two IP addresses (ports change per socket). */
  static key(kind: string, localAddress: string, remoteAddress: string): string {
    return `${kind} ${localAddress} ${remoteAddress}`;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Keeps what a path learned for `key`. A threshold that is not finite and positive is
   * ignored. A higher one replaces the kept one; a lower one moves it halfway down (as
   * Linux's tcp_metrics merged thresholds before it stopped keeping them, 5.6's
   * tcp_no_ssthresh_metrics_save): a short path's window says little about what the
   * link holds. In lab f one 1 MB download's random loss at a 40 KB window replaced the
   * 205 KB a 20 s download had learned, and each 1 MB download after it took 0.60 s
   * instead of 0.37. The resume figures merge the same way (the capacity; the RTT is
   * the newest): the jump is half the kept capacity, and a safe retreat corrects one
   * that is too high within a round trip.
   */
  record(key: string, l: LearnedPath, now: number): void {
    const ssthresh =
      l.ssthresh !== undefined && l.ssthresh > 0 && Number.isFinite(l.ssthresh)
        ? l.ssthresh
        : undefined;
    const resume = usableResume(l.resume) ? l.resume : undefined;
    if (ssthresh === undefined && resume === undefined) return;
    const kept = this.live(key, now);
    const merge = (old: number | undefined, value: number): number =>
      old !== undefined && value < old ? (old + value) / 2 : value;
    const entry: Entry = {
      ssthresh: ssthresh === undefined ? kept?.ssthresh : merge(kept?.ssthresh, ssthresh),
      resume:
        resume === undefined
          ? kept?.resume
          : { cwnd: merge(kept?.resume?.cwnd, resume.cwnd), rttMs: resume.rttMs },
      at: now,
    };
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** The threshold kept for `key`, if one was recorded within ttlMs. */
  ssthresh(key: string, now: number): number | undefined {
    return this.live(key, now)?.ssthresh;
  }

  /** Careful Resume's saved figures for `key`, if recorded within ttlMs. */
  resume(key: string, now: number): ResumeSaved | undefined {
    return this.live(key, now)?.resume;
  }

  private live(key: string, now: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (now - e.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }
}
