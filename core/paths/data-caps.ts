import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { BraidError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

/** One uplink's cap and its usage in the current month. */
export interface CapEntry {
  /** Monthly cap in bytes; 0 means no cap. */
  capBytes: number;
  /** Calendar month of `usedBytes`, as YYYY-MM in local time (a carrier's bill month). */
  month: string;
  usedBytes: number;
  /** Thresholds already announced this month, so each is told once. */
  warned: boolean;
  reached: boolean;
}

export interface DataCapEvents {
  /** Usage crossed 80% of the cap. */
  warning: [uplink: string, entry: CapEntry];
  /** Usage reached the cap: the uplink is demoted to backup until the month ends. */
  reached: [uplink: string, entry: CapEntry];
}

export interface DataCapOptions {
  /** JSON file for the accounting; written atomically. */
  file: string;
  logger: Logger;
  /** Local time source, for the month; injected in tests. */
  now?: () => Date;
  /** Fraction of the cap that triggers the warning. */
  warnAt?: number;
}

const FILE_VERSION = 1;

function monthOf(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

/**
 * Per-uplink monthly data caps with persisted accounting (issue: uplinks, item 5).
 * Uplinks are keyed by a stable name the user recognises (the interface name). Usage
 * resets when the month changes; a warning is emitted at 80% and the uplink is
 * demoted to backup at 100%. A broken accounting file is moved aside with a warning
 * and accounting starts again, instead of failing the engine.
 */
export class DataCapLedger extends EventEmitter<DataCapEvents> {
  private readonly entries = new Map<string, CapEntry>();
  readonly file: string;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly warnAt: number;
  private dirty = false;

  constructor(options: DataCapOptions) {
    super();
    this.file = options.file;
    this.log = options.logger.child({ component: 'data-caps' });
    this.now = options.now ?? ((): Date => new Date());
    this.warnAt = options.warnAt ?? 0.8;
    this.load();
  }

  /** Sets (or with 0 removes) an uplink's monthly cap. */
  setCap(uplink: string, capBytes: number): void {
    if (!Number.isSafeInteger(capBytes) || capBytes < 0) {
      throw new BraidError('BRAID_ERR_CONFIG', 'a data cap is a whole number of bytes ≥ 0', {
        value: capBytes,
      });
    }
    const e = this.entry(uplink);
    e.capBytes = capBytes;
    e.warned = capBytes > 0 && e.usedBytes >= capBytes * this.warnAt;
    e.reached = capBytes > 0 && e.usedBytes >= capBytes;
    this.dirty = true;
  }

  /** Adds bytes sent or received on the uplink, and announces thresholds crossed. */
  record(uplink: string, bytes: number): void {
    if (!(bytes > 0)) return;
    const e = this.entry(uplink);
    e.usedBytes += bytes;
    this.dirty = true;
    if (e.capBytes === 0) return;
    if (!e.warned && e.usedBytes >= e.capBytes * this.warnAt) {
      e.warned = true;
      this.log.warn('uplink data cap warning', { uplink, used: e.usedBytes, cap: e.capBytes });
      this.emit('warning', uplink, { ...e });
    }
    if (!e.reached && e.usedBytes >= e.capBytes) {
      e.reached = true;
      this.log.warn('uplink data cap reached: demoted to backup', {
        uplink,
        used: e.usedBytes,
        cap: e.capBytes,
      });
      this.emit('reached', uplink, { ...e });
    }
  }

  /** True while the uplink's cap is reached this month (it must act as backup). */
  isCapped(uplink: string): boolean {
    const e = this.entries.get(uplink);
    if (e === undefined) return false;
    this.rollover(e);
    return e.reached;
  }

  get(uplink: string): Readonly<CapEntry> | undefined {
    const e = this.entries.get(uplink);
    if (e !== undefined) this.rollover(e);
    return e;
  }

  list(): Array<{ uplink: string } & CapEntry> {
    return [...this.entries].map(([uplink, e]) => {
      this.rollover(e);
      return { uplink, ...e };
    });
  }

  /** Writes the accounting if it changed (temp file, then rename). */
  save(): void {
    if (!this.dirty) return;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const body = { version: FILE_VERSION, uplinks: Object.fromEntries(this.entries) };
    writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
    this.dirty = false;
  }

  private entry(uplink: string): CapEntry {
    let e = this.entries.get(uplink);
    if (e === undefined) {
      e = { capBytes: 0, month: monthOf(this.now()), usedBytes: 0, warned: false, reached: false };
      this.entries.set(uplink, e);
    }
    this.rollover(e);
    return e;
  }

  private rollover(e: CapEntry): void {
    const month = monthOf(this.now());
    if (e.month === month) return;
    e.month = month;
    e.usedBytes = 0;
    e.warned = false;
    e.reached = false;
    this.dirty = true;
  }

  private load(): void {
    if (!existsSync(this.file)) return;
    let problem: string | undefined;
    try {
      const body = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
      problem = this.parse(body);
    } catch (err) {
      problem = `not JSON: ${(err as Error).message}`;
    }
    if (problem === undefined) return;
    const aside = `${this.file}.broken-${Date.now()}`;
    renameSync(this.file, aside);
    this.entries.clear();
    this.log.warn('data cap accounting file was broken; moved aside, starting again', {
      file: this.file,
      movedTo: aside,
      problem,
    });
  }

  /** Fills entries from a parsed file; returns what is wrong, field by field. */
  private parse(body: unknown): string | undefined {
    if (typeof body !== 'object' || body === null) return 'top level is not an object';
    const b = body as { version?: unknown; uplinks?: unknown };
    if (b.version !== FILE_VERSION) return `version must be ${FILE_VERSION}`;
    if (typeof b.uplinks !== 'object' || b.uplinks === null) return 'uplinks is not an object';
    for (const [name, raw] of Object.entries(b.uplinks as Record<string, unknown>)) {
      const e = raw as Partial<CapEntry> | null;
      if (typeof e !== 'object' || e === null) return `uplinks.${name} is not an object`;
      for (const k of ['capBytes', 'usedBytes'] as const) {
        const v = e[k];
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
          return `uplinks.${name}.${k} must be a whole number ≥ 0`;
      }
      if (typeof e.month !== 'string' || !/^\d{4}-\d{2}$/.test(e.month))
        return `uplinks.${name}.month must be YYYY-MM`;
      if (typeof e.warned !== 'boolean' || typeof e.reached !== 'boolean')
        return `uplinks.${name}.warned and .reached must be booleans`;
      this.entries.set(name, {
        capBytes: e.capBytes!,
        month: e.month,
        usedBytes: e.usedBytes!,
        warned: e.warned,
        reached: e.reached,
      });
    }
    return undefined;
  }
}
