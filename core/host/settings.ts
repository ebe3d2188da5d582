import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { UPLINK_ROLES, v, type UplinkRole, type Validator } from './contract.js';
import { BraidError } from '../util/errors.js';

/**
 * The dashboard's settings file (STYLE §8; per-app rules live in core/proxy's rules file): one schema, each field with its default
 * and its validator beside it; the TypeScript type is derived from the schema. A bad
 * field falls back to its default with a warning naming it; a file that is not JSON is
 * moved aside (never deleted: it may be the user's only copy) and reported; nothing
 * here crashes the app.
 */
export interface UplinkSetting {
  role: UplinkRole;
  /** Monthly data cap in bytes; null = not metered. */
  capBytes: number | null;
}

const validateUplinkSetting: Validator<UplinkSetting> = v.object<UplinkSetting>({
  role: v.oneOf(UPLINK_ROLES),
  capBytes: v.nullable(v.number(0, Number.MAX_SAFE_INTEGER, true)),
});

interface Field<T> {
  readonly default: () => T;
  readonly validate: Validator<T>;
}
const field = <T>(def: () => T, validate: Validator<T>): Field<T> => ({ default: def, validate });

/** A record whose entries are checked one by one, so one bad entry costs only itself. */
function recordOf<T>(entry: Validator<T>, keyPattern: RegExp): Validator<Record<string, T>> {
  return (x, w = '') => {
    if (typeof x !== 'object' || x === null || Array.isArray(x))
      return { ok: false, error: `${w} must be an object` };
    const out: Record<string, T> = {};
    for (const [k, value] of Object.entries(x as Record<string, unknown>)) {
      if (!keyPattern.test(k)) return { ok: false, error: `${w}.${k} is not a valid name` };
      const r = entry(value, `${w}.${k}`);
      if (!r.ok) return r;
      out[k] = r.value;
    }
    return { ok: true, value: out };
  };
}

export const SETTINGS_SCHEMA = {
  relayInvite: field<string | null>(() => null, v.nullable(v.string(1024, /^braid:\/\/\S+$/))),
  /** DESIGN §1: the local SOCKS5 proxy on 127.0.0.1 (1080 is SOCKS's registered port). */
  proxyPort: field(() => 1080, v.number(1024, 65535, true)),
  launchAtLogin: field(() => false, v.boolean()),
  globalBypass: field(() => false, v.boolean()),
  uplinks: field<Record<string, UplinkSetting>>(
    () => ({}),
    recordOf(validateUplinkSetting, /^[\w.:@-]{1,64}$/),
  ),
};

type Schema = typeof SETTINGS_SCHEMA;
export type Settings = { [K in keyof Schema]: Schema[K] extends Field<infer T> ? T : never };
export const SETTINGS_VERSION = 1;

export function defaultSettings(): Settings {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(SETTINGS_SCHEMA)) out[k] = f.default();
  return out as Settings;
}

export interface LoadedSettings {
  settings: Settings;
  /** One line per problem, for the snapshot's warnings. */
  warnings: string[];
}

/** Reads the file; never throws for its content (only for a folder we cannot read at all). */
export function loadSettings(file: string, now: () => Date = () => new Date()): LoadedSettings {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { settings: defaultSettings(), warnings: [] };
    throw new BraidError('BRAID_ERR_CONFIG', 'cannot read the settings file', {
      value: file,
      cause: err,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return moveAside(file, `is not valid JSON (${(err as Error).message})`, now);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return moveAside(file, 'does not hold a settings object', now);
  const input = parsed as Record<string, unknown>;
  const warnings: string[] = [];
  const settings = defaultSettings() as Record<string, unknown>;
  for (const [k, f] of Object.entries(SETTINGS_SCHEMA) as Array<[string, Field<unknown>]>) {
    if (!(k in input)) continue;
    const r = f.validate(input[k], k);
    if (r.ok) settings[k] = r.value;
    else warnings.push(`settings: ${r.error}; using the default`);
  }
  for (const k of Object.keys(input)) {
    if (k !== 'version' && !(k in SETTINGS_SCHEMA))
      warnings.push(`settings: unknown field "${k}" ignored`);
  }
  if (input.version !== undefined && input.version !== SETTINGS_VERSION)
    warnings.push(`settings: version ${JSON.stringify(input.version)} read as ${SETTINGS_VERSION}`);
  return { settings: settings as Settings, warnings };
}

function moveAside(file: string, why: string, now: () => Date): LoadedSettings {
  const aside = `${file}.broken-${now().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(file, aside);
  return {
    settings: defaultSettings(),
    warnings: [`settings: ${file} ${why}; moved to ${aside} and started from defaults`],
  };
}

/**
 * Writes atomically: a temporary file in the same folder, flushed, then renamed over
 * the old one, so a crash leaves either the old or the new file, never half of one.
 */
export function saveSettings(file: string, settings: Settings): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeSync(fd, JSON.stringify({ version: SETTINGS_VERSION, ...settings }, null, 2) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    // The old file is untouched; only our half-written copy goes.
    rmSync(tmp, { force: true });
    throw new BraidError('BRAID_ERR_CONFIG', 'cannot write the settings file', {
      value: file,
      cause: err,
    });
  }
}
