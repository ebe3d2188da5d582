/**
 * Per-app rules (DESIGN §1, Apps view): how the sessions of one application are
 * carried — semantics for its datagrams, the static priority order of the four
 * objectives (paper §III-A), the two sliders, and bypass. Defaults come from a guess
 * at the app's kind; the user overrides them, and a RuleBook keeps the overrides in a
 * JSON file.
 */
import { EventEmitter } from 'node:events';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname } from 'node:path';
import { OBJECTIVES, SEMANTICS, type Objective, type Semantics } from '../wire/frame.js';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';

export type AppKind = 'browser' | 'game' | 'call' | 'streaming' | 'sync' | 'other';
export const APP_KINDS: readonly AppKind[] = [
  'browser',
  'game',
  'call',
  'streaming',
  'sync',
  'other',
];

export interface AppRule {
  /** Stable identity: the executable's path (or "unknown"). */
  appId: string;
  name: string;
  kind: AppKind;
  /** Semantics of the app's UDP traffic (UDP ASSOCIATE); TCP is always reliable-ordered. */
  udpSemantics: Semantics;
  /** All four objectives, most important first (paper §III-A static priority order). */
  priorities: Objective[];
  /** 0 = favour throughput only, 1 = favour low loss only (the Apps view slider). */
  lossVsThroughput: number;
  /** 0 = favour throughput only, 1 = favour low latency only. */
  latencyVsThroughput: number;
  /** Connections of this app go straight out, untouched by the session layer. */
  bypass: boolean;
}

type KindDefaults = Omit<AppRule, 'appId' | 'name' | 'kind' | 'bypass'>;

/**
 * Defaults per kind. Interactive apps rank latency and jitter first; bulk apps
 * throughput; "other" follows DESIGN §3 (loss before throughput). UDP semantics
 * follow what the apps' own protocols expect: QUIC and games tolerate loss and
 * reorder; calls want order with a playout deadline; sync wants everything.
 */
export const KIND_DEFAULTS: Record<AppKind, KindDefaults> = {
  browser: {
    udpSemantics: 'unreliable-unordered',
    priorities: ['latency', 'throughput', 'loss', 'jitter'],
    lossVsThroughput: 0.4,
    latencyVsThroughput: 0.6,
  },
  game: {
    udpSemantics: 'unreliable-unordered',
    priorities: ['latency', 'jitter', 'loss', 'throughput'],
    lossVsThroughput: 0.7,
    latencyVsThroughput: 0.9,
  },
  call: {
    udpSemantics: 'unreliable-ordered',
    priorities: ['jitter', 'latency', 'loss', 'throughput'],
    lossVsThroughput: 0.8,
    latencyVsThroughput: 0.9,
  },
  streaming: {
    udpSemantics: 'unreliable-ordered',
    priorities: ['throughput', 'loss', 'jitter', 'latency'],
    lossVsThroughput: 0.3,
    latencyVsThroughput: 0.2,
  },
  sync: {
    udpSemantics: 'reliable-unordered',
    priorities: ['throughput', 'loss', 'latency', 'jitter'],
    lossVsThroughput: 0.2,
    latencyVsThroughput: 0.1,
  },
  other: {
    udpSemantics: 'unreliable-unordered',
    priorities: ['loss', 'throughput', 'latency', 'jitter'],
    lossVsThroughput: 0.5,
    latencyVsThroughput: 0.5,
  },
};

const KIND_PATTERNS: Array<[AppKind, RegExp]> = [
  [
    'browser',
    /^(firefox|firefox-esr|librewolf|chrome|google-chrome|chromium|chromium-browser|brave|brave-browser|microsoft-edge|msedge|opera|vivaldi|safari|epiphany)(\.exe)?$/i,
  ],
  [
    'call',
    /^(zoom|zoom\.us|teams|ms-teams|skype|skypeforlinux|discord|slack|signal-desktop|jitsi|webex)(\.exe)?$/i,
  ],
  [
    'game',
    /^(steam|steamwebhelper|lutris|heroic|minecraft|javaw|wow|dota2|csgo|cs2|hl2_linux|fortnite.*|league.*|valorant.*|.*game.*)(\.exe)?$/i,
  ],
  ['streaming', /^(vlc|mpv|spotify|totem|celluloid|kodi|plex.*|netflix|obs|obs64)(\.exe)?$/i],
  [
    'sync',
    /^(dropbox|rsync|syncthing|nextcloud|owncloud|onedrive|insync|rclone|megasync|restic|borg)(\.exe)?$/i,
  ],
];

/** Guesses an app's kind from its executable's name (a path is reduced to its base name). */
export function guessKind(executable: string): AppKind {
  const name = basename(executable.replaceAll('\\', '/'));
  for (const [kind, pattern] of KIND_PATTERNS) if (pattern.test(name)) return kind;
  return 'other';
}

/** The rule an app gets when the user has not set one. */
export function defaultRule(appId: string, name: string, kind: AppKind = guessKind(name)): AppRule {
  const d = KIND_DEFAULTS[kind];
  return { appId, name, kind, ...d, priorities: [...d.priorities], bypass: false };
}

/** One problem in a rules document, located by a JSON path such as "[2].priorities". */
export interface RuleFieldError {
  path: string;
  message: string;
}

export type ParseRulesResult =
  { ok: true; rules: AppRule[] } | { ok: false; errors: RuleFieldError[] };

const MAX_RULES = 10_000;
const MAX_TEXT = 4096;

/**
 * Validates an array of app rules (parsed JSON, or JSON text) field by field and
 * reports every problem, not only the first. Unknown fields are errors too: a typo
 * ("bypas") silently ignored would be a rule the user thinks is applied.
 */
export function parseAppRules(json: unknown): ParseRulesResult {
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (err) {
      return { ok: false, errors: [{ path: '', message: `not JSON: ${(err as Error).message}` }] };
    }
  }
  const errors: RuleFieldError[] = [];
  if (!Array.isArray(value))
    return { ok: false, errors: [{ path: '', message: 'expected an array of app rules' }] };
  if (value.length > MAX_RULES)
    return { ok: false, errors: [{ path: '', message: `more than ${MAX_RULES} rules` }] };
  const rules: AppRule[] = [];
  const seen = new Set<string>();
  value.forEach((item: unknown, i) => {
    const rule = parseRule(item, `[${i}]`, errors);
    if (rule === undefined) return;
    if (seen.has(rule.appId)) {
      errors.push({
        path: `[${i}].appId`,
        message: `duplicate appId ${JSON.stringify(rule.appId)}`,
      });
      return;
    }
    seen.add(rule.appId);
    rules.push(rule);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, rules };
}

const FIELDS = [
  'appId',
  'name',
  'kind',
  'udpSemantics',
  'priorities',
  'lossVsThroughput',
  'latencyVsThroughput',
  'bypass',
] as const;

function parseRule(item: unknown, at: string, errors: RuleFieldError[]): AppRule | undefined {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    errors.push({ path: at, message: 'expected an object' });
    return undefined;
  }
  const o = item as Record<string, unknown>;
  const before = errors.length;
  const err = (field: string, message: string): void => {
    errors.push({ path: `${at}.${field}`, message });
  };
  for (const key of Object.keys(o))
    if (!(FIELDS as readonly string[]).includes(key)) err(key, 'unknown field');
  const text = (field: 'appId' | 'name'): string => {
    const v = o[field];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_TEXT)
      err(field, `expected a non-empty string of at most ${MAX_TEXT} characters`);
    return typeof v === 'string' ? v : '';
  };
  const unit = (field: 'lossVsThroughput' | 'latencyVsThroughput'): number => {
    const v = o[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1)
      err(field, 'expected a number from 0 to 1');
    return typeof v === 'number' ? v : 0;
  };
  const appId = text('appId');
  const name = text('name');
  if (!(APP_KINDS as readonly unknown[]).includes(o.kind))
    err('kind', `expected one of ${APP_KINDS.join(', ')}`);
  if (!(SEMANTICS as readonly unknown[]).includes(o.udpSemantics))
    err('udpSemantics', `expected one of ${SEMANTICS.join(', ')}`);
  const p = o.priorities;
  if (
    !Array.isArray(p) ||
    p.length !== OBJECTIVES.length ||
    !OBJECTIVES.every((objective) => p.includes(objective))
  )
    err(
      'priorities',
      `expected all four objectives once each, in order (${OBJECTIVES.join(', ')})`,
    );
  const lossVsThroughput = unit('lossVsThroughput');
  const latencyVsThroughput = unit('latencyVsThroughput');
  if (typeof o.bypass !== 'boolean') err('bypass', 'expected true or false');
  if (errors.length > before) return undefined;
  return {
    appId,
    name,
    kind: o.kind as AppKind,
    udpSemantics: o.udpSemantics as Semantics,
    priorities: [...(p as Objective[])],
    lossVsThroughput,
    latencyVsThroughput,
    bypass: o.bypass as boolean,
  };
}

function formatErrors(errors: RuleFieldError[]): string {
  return errors.map((e) => `${e.path || '(document)'}: ${e.message}`).join('; ');
}

/** The rules file: `{ "version": 1, "rules": [AppRule, ...] }`. */
export const RULES_FILE_VERSION = 1;

export interface RuleBookEvents {
  /** The user's rule for `appId` was set (`rule`) or removed (undefined: back to the default). */
  change: [appId: string, rule: AppRule | undefined];
}

/**
 * The user's per-app rules. `get` returns the user's own rule for an app; `ruleFor`
 * the rule that applies (the user's, else the default for the app's kind). With a
 * file, every change is saved at once (temporary file, fsync, rename), and a file
 * that does not parse is moved aside with a warning instead of stopping the proxy.
 */
export class RuleBook extends EventEmitter<RuleBookEvents> {
  private readonly rules = new Map<string, AppRule>();
  private readonly log: Logger;
  private readonly file: string | undefined;

  constructor(options: { file?: string; logger?: Logger; rules?: AppRule[] } = {}) {
    super();
    this.file = options.file;
    this.log = (options.logger ?? createLogger()).child({ component: 'rules' });
    for (const r of options.rules ?? []) this.rules.set(r.appId, r);
  }

  /** Loads `file` (a missing file is an empty book; a broken one is moved aside). */
  static load(file: string, logger?: Logger): RuleBook {
    const book = new RuleBook({ file, logger });
    if (!existsSync(file)) return book;
    let problem: string | undefined;
    let rules: AppRule[] = [];
    try {
      const doc: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
        problem = 'expected an object {"version": 1, "rules": [...]}';
      else if ((doc as { version?: unknown }).version !== RULES_FILE_VERSION)
        problem = `version: expected ${RULES_FILE_VERSION}`;
      else {
        const parsed = parseAppRules((doc as { rules?: unknown }).rules);
        if (parsed.ok) rules = parsed.rules;
        else problem = formatErrors(parsed.errors.map((e) => ({ ...e, path: `rules${e.path}` })));
      }
    } catch (err) {
      problem = `not readable JSON: ${(err as Error).message}`;
    }
    if (problem !== undefined) {
      const aside = `${file}.broken-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      try {
        renameSync(file, aside);
      } catch (err) {
        throw new BraidError(
          'BRAID_ERR_RULES',
          `rules file ${file} is broken and cannot be moved aside`,
          {
            value: problem,
            cause: err,
          },
        );
      }
      book.log.warn('rules file is broken; moved aside, starting with default rules', {
        file,
        movedTo: aside,
        problem,
      });
      return book;
    }
    for (const r of rules) book.rules.set(r.appId, r);
    return book;
  }

  get(appId: string): AppRule | undefined {
    const r = this.rules.get(appId);
    return r === undefined ? undefined : { ...r, priorities: [...r.priorities] };
  }

  /** The rule that applies to an app: the user's, else the default for its kind. */
  ruleFor(app: { appId: string; name: string }): AppRule {
    return this.get(app.appId) ?? defaultRule(app.appId, app.name);
  }

  list(): AppRule[] {
    return [...this.rules.values()].map((r) => ({ ...r, priorities: [...r.priorities] }));
  }

  /** Validates and stores `rule` (throws BRAID_ERR_RULES naming each bad field), saves, emits 'change'. */
  set(rule: AppRule): void {
    const parsed = parseAppRules([rule]);
    if (!parsed.ok)
      throw new BraidError('BRAID_ERR_RULES', `invalid rule: ${formatErrors(parsed.errors)}`, {
        value: rule.appId,
      });
    const clean = parsed.rules[0]!;
    this.rules.set(clean.appId, clean);
    this.save();
    this.emit('change', clean.appId, this.get(clean.appId));
  }

  /** Forgets the user's rule for `appId`: the app goes back to its default. */
  delete(appId: string): boolean {
    if (!this.rules.delete(appId)) return false;
    this.save();
    this.emit('change', appId, undefined);
    return true;
  }

  /** Writes the book to its file: temporary file, fsync, rename (atomic on POSIX). */
  save(): void {
    if (this.file === undefined) return;
    const doc = JSON.stringify({ version: RULES_FILE_VERSION, rules: this.list() }, null, 2) + '\n';
    mkdirSync(dirname(this.file), { recursive: true });
    const temp = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
    let fd: number | undefined;
    try {
      fd = openSync(temp, 'wx', 0o600);
      writeSync(fd, doc);
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      renameSync(temp, this.file);
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      try {
        if (existsSync(temp)) unlinkSync(temp);
      } catch (cleanup) {
        this.log.warn('cannot remove temporary rules file', { temp, ...errorFields(cleanup) });
      }
      throw new BraidError('BRAID_ERR_RULES', `cannot write rules file ${this.file}`, {
        value: this.file,
        cause: err,
      });
    }
  }
}
