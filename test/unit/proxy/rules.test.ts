import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  defaultRule,
  guessKind,
  parseAppRules,
  RuleBook,
  type AppRule,
} from '../../../core/proxy/rules.js';
import { createMemoryLogger } from '../../../core/util/log.js';

const firefox: AppRule = {
  appId: '/usr/lib/firefox/firefox',
  name: 'firefox',
  kind: 'browser',
  udpSemantics: 'unreliable-unordered',
  priorities: ['latency', 'throughput', 'loss', 'jitter'],
  lossVsThroughput: 0.25,
  latencyVsThroughput: 0.75,
  bypass: false,
};

describe('per-app rules', () => {
  it('guesses the kind from the executable name', () => {
    expect(guessKind('/usr/lib/firefox/firefox')).toBe('browser');
    expect(guessKind('C:\\Program Files\\Google\\Chrome\\chrome.exe')).toBe('browser');
    expect(guessKind('/snap/bin/chromium')).toBe('browser');
    expect(guessKind('/usr/bin/zoom')).toBe('call');
    expect(guessKind('Discord.exe')).toBe('call');
    expect(guessKind('/usr/games/steam')).toBe('game');
    expect(guessKind('/usr/bin/mpv')).toBe('streaming');
    expect(guessKind('/usr/bin/spotify')).toBe('streaming');
    expect(guessKind('/usr/bin/rsync')).toBe('sync');
    expect(guessKind('/usr/bin/syncthing')).toBe('sync');
    expect(guessKind('/usr/bin/ssh')).toBe('other');
  });

  it('gives every kind a complete default with all four objectives', () => {
    for (const name of ['firefox', 'zoom', 'steam', 'vlc', 'dropbox', 'curl']) {
      const rule = defaultRule(`/usr/bin/${name}`, name);
      expect(parseAppRules([rule])).toEqual({ ok: true, rules: [rule] });
    }
    expect(defaultRule('/usr/bin/curl', 'curl').priorities.slice(0, 2)).toEqual([
      'loss',
      'throughput',
    ]);
  });

  it('validates field by field and reports every problem with its path', () => {
    const result = parseAppRules([
      firefox,
      {
        ...firefox,
        appId: '',
        kind: 'toaster',
        priorities: ['latency', 'latency', 'loss', 'jitter'],
      },
      { ...firefox, appId: 'x', lossVsThroughput: 2, bypas: true },
      { ...firefox },
      'nope',
    ]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.path)).toEqual([
      '[1].appId',
      '[1].kind',
      '[1].priorities',
      '[2].bypas',
      '[2].lossVsThroughput',
      '[3].appId',
      '[4]',
    ]);
    expect(result.errors[5]!.message).toContain('duplicate');
    expect(parseAppRules('{not json').ok).toBe(false);
    expect(parseAppRules(JSON.stringify([firefox]))).toEqual({ ok: true, rules: [firefox] });
  });
});

describe('RuleBook file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'braid-rules-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('saves atomically on each change, loads back, and tells listeners', () => {
    const file = join(dir, 'rules.json');
    const book = RuleBook.load(file);
    const changes: string[] = [];
    book.on('change', (appId, rule) => changes.push(`${appId}:${rule?.bypass}`));
    book.set(firefox);
    book.set({ ...firefox, bypass: true });
    expect(changes).toEqual([`${firefox.appId}:false`, `${firefox.appId}:true`]);
    expect(readdirSync(dir)).toEqual(['rules.json']); // no temporary file left behind
    const again = RuleBook.load(file);
    expect(again.get(firefox.appId)).toEqual({ ...firefox, bypass: true });
    expect(again.ruleFor({ appId: '/usr/bin/vlc', name: 'vlc' }).kind).toBe('streaming');
    expect(again.delete(firefox.appId)).toBe(true);
    expect(RuleBook.load(file).list()).toEqual([]);
  });

  it('refuses an invalid rule with BRAID_ERR_RULES naming the field', () => {
    const book = new RuleBook();
    let caught: unknown;
    try {
      book.set({ ...firefox, latencyVsThroughput: -1 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'BRAID_ERR_RULES' });
    expect(String(caught)).toContain('[0].latencyVsThroughput');
  });

  it('moves a broken file aside with a warning and starts from the defaults', () => {
    const file = join(dir, 'rules.json');
    writeFileSync(file, JSON.stringify({ version: 1, rules: [{ ...firefox, kind: 'toaster' }] }));
    const { logger, lines } = createMemoryLogger('warn');
    const book = RuleBook.load(file, logger);
    expect(book.list()).toEqual([]);
    expect(existsSync(file)).toBe(false);
    const aside = readdirSync(dir).find((f) => f.startsWith('rules.json.broken-'));
    expect(aside).toBeDefined();
    const kept = JSON.parse(readFileSync(join(dir, aside!), 'utf8')) as { rules: AppRule[] };
    expect(kept.rules[0]!.kind).toBe('toaster');
    expect(lines[0]?.level).toBe('warn');
    expect(String(lines[0]?.problem)).toContain('rules[0].kind');
  });
});
