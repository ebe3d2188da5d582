import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../util/clock.js';
import { BraidError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { errorFields } from '../util/log.js';
import type { TransportKind } from '../wire/frame.js';
import { TRANSPORT_KINDS } from '../wire/frame.js';
import type { PathScore } from './estimators.js';

/**
 * Scoreboard of recently measured paths, shared by all sessions and associations of a
 * host (paper §III-B: "to reduce the overhead associated with path evaluation for
 * short-lived connections such as HTTP, the session layer could use a scoreboard of
 * recently used paths across all sessions"). Keyed by (local uplink, remote address,
 * transport); persisted across restarts as one JSON file written atomically; aged
 * out so that old figures fade instead of misleading.
 *
 * Ageing: an entry's confidence halves every `halfLifeMs` since it was last recorded.
 * `seed()` moves each figure from the recorded value toward what a path without any
 * sample starts from, in proportion to the lost confidence: rttvar toward srtt/2 (RFC
 * 9002 §5.3's first-sample variance, i.e. "unsure"), the delivery rate toward 0
 * ("unknown": the schedulers then use cwnd/srtt), loss and jitter toward 0 (no
 * evidence). The RTT itself is kept: a path's base delay changes least. Entries older
 * than `maxAgeMs`, or with confidence below `minConfidence`, are dropped.
 *
 * Times are wall-clock milliseconds (the clock passed in must be epoch-based, e.g.
 * `{ now: Date.now }`): a monotonic clock restarts with the process and would make
 * persisted entries look new.
 */
export interface ScoreboardKey {
  /** The local uplink: interface name or local address the path is bound to. */
  localUplink: string;
  /** The remote address (host or host:port) the path goes to. */
  remoteAddress: string;
  transport: TransportKind;
}

export interface ScoreSeed extends PathScore {
  /** 1 for a figure recorded just now, halving every half-life. */
  confidence: number;
  ageMs: number;
}

export interface ScoreboardEntry extends PathScore {
  key: ScoreboardKey;
  /** Wall-clock ms of the last record. */
  updatedAt: number;
}

export interface ScoreboardOptions {
  /** Wall clock in epoch milliseconds. */
  clock: Clock;
  log: Logger;
  /** The JSON file; without one the scoreboard lives in memory only. */
  file?: string;
  maxAgeMs?: number;
  halfLifeMs?: number;
  minConfidence?: number;
  maxEntries?: number;
}

const FILE_VERSION = 1;
/** Older evidence weighs at most this many packets when a new record is merged in. */
const MAX_MERGE_SAMPLES = 1000;

export function scoreboardKey(key: ScoreboardKey): string {
  return JSON.stringify([key.localUplink, key.remoteAddress, key.transport]);
}

export class Scoreboard {
  private readonly entries = new Map<string, ScoreboardEntry>();
  private readonly clock: Clock;
  private readonly log: Logger;
  readonly file: string | undefined;
  private readonly maxAgeMs: number;
  private readonly halfLifeMs: number;
  private readonly minConfidence: number;
  private readonly maxEntries: number;

  constructor(options: ScoreboardOptions) {
    this.clock = options.clock;
    this.log = options.log;
    this.file = options.file;
    this.maxAgeMs = options.maxAgeMs ?? 24 * 3600_000;
    this.halfLifeMs = options.halfLifeMs ?? 15 * 60_000;
    this.minConfidence = options.minConfidence ?? 0.05;
    this.maxEntries = options.maxEntries ?? 4096;
    for (const [name, v] of [
      ['maxAgeMs', this.maxAgeMs],
      ['halfLifeMs', this.halfLifeMs],
      ['maxEntries', this.maxEntries],
    ] as const) {
      if (!(Number.isFinite(v) && v > 0)) {
        throw new BraidError('BRAID_ERR_CONFIG', `scoreboard ${name} must be positive`, {
          value: v,
        });
      }
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Records a path's figures (at the end of a session, when a path closes, and every
   * few seconds while it lives). Merged with what is known, weighted by the packets
   * behind each, the old evidence discounted by its age.
   */
  record(key: ScoreboardKey, score: PathScore): void {
    const problem = invalidScore(score);
    if (problem !== undefined) {
      throw new BraidError('BRAID_ERR_USAGE', `scoreboard record: ${problem}`, {
        value: score,
        path: scoreboardKey(key),
      });
    }
    const now = this.clock.now();
    const id = scoreboardKey(key);
    const old = this.entries.get(id);
    let merged: PathScore = score;
    if (old !== undefined) {
      const oldWeight = Math.min(old.samples, MAX_MERGE_SAMPLES) * this.confidence(old, now);
      const newWeight = Math.max(score.samples, 1);
      const w = newWeight / (newWeight + oldWeight);
      const mix = (a: number, b: number): number => w * a + (1 - w) * b;
      merged = {
        srttMs: mix(score.srttMs, old.srttMs),
        rttvarMs: mix(score.rttvarMs, old.rttvarMs),
        deliveryRate: mix(score.deliveryRate, old.deliveryRate),
        lossRate: mix(score.lossRate, old.lossRate),
        jitterMs: mix(score.jitterMs, old.jitterMs),
        samples: Math.min(old.samples, MAX_MERGE_SAMPLES) + score.samples,
      };
      this.entries.delete(id); // re-inserted below: Map order is recency order
    }
    this.entries.set(id, { ...merged, key: { ...key }, updatedAt: now });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  private confidence(entry: ScoreboardEntry, now: number): number {
    const age = Math.max(0, now - entry.updatedAt);
    return Math.pow(0.5, age / this.halfLifeMs);
  }

  /** Initial estimates for a new path, or undefined when nothing fresh enough is known. */
  seed(key: ScoreboardKey): ScoreSeed | undefined {
    const now = this.clock.now();
    const id = scoreboardKey(key);
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    const ageMs = Math.max(0, now - e.updatedAt);
    const c = this.confidence(e, now);
    if (ageMs > this.maxAgeMs || c < this.minConfidence) {
      this.entries.delete(id);
      return undefined;
    }
    return {
      srttMs: e.srttMs,
      rttvarMs: c * e.rttvarMs + (1 - c) * Math.max(e.rttvarMs, e.srttMs / 2),
      deliveryRate: c * e.deliveryRate,
      lossRate: c * e.lossRate,
      jitterMs: c * e.jitterMs,
      samples: Math.round(c * e.samples),
      confidence: c,
      ageMs,
    };
  }

  /** Drops entries past their age; returns how many. */
  prune(): number {
    const now = this.clock.now();
    let dropped = 0;
    for (const [id, e] of this.entries) {
      if (now - e.updatedAt > this.maxAgeMs || this.confidence(e, now) < this.minConfidence) {
        this.entries.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  /** All entries, newest last (for the dashboard). */
  snapshot(): ScoreboardEntry[] {
    return [...this.entries.values()].map((e) => ({ ...e, key: { ...e.key } }));
  }

  /**
   * Reads the file. A missing file is an empty scoreboard; a file that is not a
   * scoreboard is moved aside (`<file>.broken-<time>`) with a warning so the next save
   * does not destroy what a person may want to look at, and the scoreboard starts
   * empty. Entries that fail validation are skipped one by one, with a warning.
   */
  async load(): Promise<void> {
    const file = this.file;
    if (file === undefined) return;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new BraidError('BRAID_ERR_CONFIG', `cannot read the scoreboard ${file}`, {
        value: file,
        cause: err,
      });
    }
    const parsed = parseScoreboard(text);
    if (typeof parsed === 'string') {
      const aside = `${file}.broken-${Math.round(this.clock.now())}`;
      await rename(file, aside);
      this.log.warn('scoreboard file is broken; moved aside, starting empty', {
        file,
        movedTo: aside,
        reason: parsed,
      });
      return;
    }
    let skipped = 0;
    const now = this.clock.now();
    for (let i = 0; i < parsed.length; i++) {
      const raw = parsed[i];
      const entry = parseEntry(raw);
      if (typeof entry === 'string') {
        skipped++;
        this.log.warn('scoreboard entry skipped', { file, index: i, reason: entry });
        continue;
      }
      if (now - entry.updatedAt > this.maxAgeMs) continue;
      this.entries.set(scoreboardKey(entry.key), entry);
    }
    if (skipped > 0) this.log.warn('scoreboard loaded with skipped entries', { file, skipped });
  }

  /** Writes the file atomically: a temporary file, fsync, rename over the old one. */
  async save(): Promise<void> {
    const file = this.file;
    if (file === undefined) return;
    this.prune();
    const body = JSON.stringify(
      { version: FILE_VERSION, entries: [...this.entries.values()] },
      null,
      1,
    );
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(body + '\n', 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch((e: unknown) =>
        this.log.warn('cannot remove scoreboard temporary file', { tmp, ...errorFields(e) }),
      );
      throw new BraidError('BRAID_ERR_CONFIG', `cannot write the scoreboard ${file}`, {
        value: file,
        cause: err,
      });
    }
  }
}

function invalidScore(s: PathScore): string | undefined {
  const fields: Array<[string, number]> = [
    ['srttMs', s.srttMs],
    ['rttvarMs', s.rttvarMs],
    ['deliveryRate', s.deliveryRate],
    ['lossRate', s.lossRate],
    ['jitterMs', s.jitterMs],
    ['samples', s.samples],
  ];
  for (const [name, v] of fields) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      return `${name} is not a finite number >= 0`;
  }
  if (s.srttMs <= 0) return 'srttMs must be positive';
  if (s.lossRate > 1) return 'lossRate above 1';
  return undefined;
}

function parseScoreboard(text: string): unknown[] | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (typeof data !== 'object' || data === null) return 'not an object';
  const o = data as Record<string, unknown>;
  if (o.version !== FILE_VERSION) return `version ${String(o.version)} is not ${FILE_VERSION}`;
  if (!Array.isArray(o.entries)) return 'no "entries" list';
  return o.entries as unknown[];
}

function parseEntry(raw: unknown): ScoreboardEntry | string {
  if (typeof raw !== 'object' || raw === null) return 'not an object';
  const o = raw as Record<string, unknown>;
  const key = o.key as Record<string, unknown> | undefined;
  if (typeof key !== 'object' || key === null) return 'no key';
  if (typeof key.localUplink !== 'string' || typeof key.remoteAddress !== 'string')
    return 'key needs localUplink and remoteAddress strings';
  if (!TRANSPORT_KINDS.includes(key.transport as TransportKind))
    return `unknown transport ${String(key.transport)}`;
  const num = (name: string): number => {
    const v = o[name];
    return typeof v === 'number' ? v : NaN;
  };
  const entry: ScoreboardEntry = {
    key: {
      localUplink: key.localUplink,
      remoteAddress: key.remoteAddress,
      transport: key.transport as TransportKind,
    },
    srttMs: num('srttMs'),
    rttvarMs: num('rttvarMs'),
    deliveryRate: num('deliveryRate'),
    lossRate: num('lossRate'),
    jitterMs: num('jitterMs'),
    samples: num('samples'),
    updatedAt: num('updatedAt'),
  };
  const problem = invalidScore(entry);
  if (problem !== undefined) return problem;
  if (!Number.isFinite(entry.updatedAt)) return 'updatedAt is not a number';
  return entry;
}
