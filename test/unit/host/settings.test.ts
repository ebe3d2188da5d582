import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  defaultSettings,
  loadSettings,
  saveSettings,
  SETTINGS_SCHEMA,
} from '../../../core/host/settings.js';
import { isBraidError } from '../../../core/util/errors.js';

const NOW = () => new Date('2026-11-25T10:00:00.000Z');

describe('dashboard settings file', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'braid-settings-'));
    file = join(dir, 'settings.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('has a default for every field of the schema', () => {
    const d = defaultSettings();
    expect(Object.keys(d).sort()).toEqual(Object.keys(SETTINGS_SCHEMA).sort());
    expect(d).toMatchObject({
      relayInvite: null,
      proxyPort: 1080,
      launchAtLogin: false,
      globalBypass: false,
    });
  });

  it('starts from defaults without a warning when there is no file', () => {
    expect(loadSettings(file, NOW)).toEqual({ settings: defaultSettings(), warnings: [] });
  });

  it('round-trips what it saved, with mode 0600 and no temporary file left', () => {
    const s = defaultSettings();
    s.proxyPort = 2080;
    s.globalBypass = true;
    s.uplinks = { usb0: { role: 'backup', capBytes: 5e9 } };
    saveSettings(file, s);
    expect(loadSettings(file, NOW)).toEqual({ settings: s, warnings: [] });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['settings.json']);
  });

  it('replaces the file atomically: a reader sees the old or the new content, whole', () => {
    const a = defaultSettings();
    saveSettings(file, a);
    const inodeBefore = statSync(file).ino;
    const b = { ...a, proxyPort: 3000 };
    saveSettings(file, b);
    // rename(2) put a new inode in place instead of rewriting the old one in place.
    expect(statSync(file).ino).not.toBe(inodeBefore);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ version: 1, proxyPort: 3000 });
  });

  it('moves a file that is not JSON aside, keeps it, and says so', () => {
    writeFileSync(file, '{ "proxyPort": 2080, ');
    const { settings, warnings } = loadSettings(file, NOW);
    expect(settings).toEqual(defaultSettings());
    const aside = `${file}.broken-2026-11-25T10-00-00-000Z`;
    expect(existsSync(file)).toBe(false);
    expect(readFileSync(aside, 'utf8')).toBe('{ "proxyPort": 2080, ');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('not valid JSON');
    expect(warnings[0]).toContain(aside);
  });

  it('moves aside JSON that is not an object', () => {
    writeFileSync(file, '[1, 2, 3]');
    const { warnings } = loadSettings(file, NOW);
    expect(warnings[0]).toContain('does not hold a settings object');
    expect(existsSync(file)).toBe(false);
  });

  it('keeps the good fields of a file with bad ones, and names each bad field', () => {
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        proxyPort: 80,
        launchAtLogin: 'yes',
        globalBypass: true,
        relayInvite: 'http://not-an-invite',
        uplinks: { wlan0: { role: 'sometimes', capBytes: null } },
        apps: [{ appId: 'x', name: 'X' }],
        colour: 'blue',
      }),
    );
    const { settings, warnings } = loadSettings(file, NOW);
    expect(settings.globalBypass).toBe(true);
    expect(settings.proxyPort).toBe(1080);
    expect(settings.launchAtLogin).toBe(false);
    expect(settings.relayInvite).toBeNull();
    expect(settings.uplinks).toEqual({});
    const text = warnings.join('\n');
    for (const name of [
      'proxyPort',
      'launchAtLogin',
      'relayInvite',
      'uplinks.wlan0.role',
      '"apps"',
      'colour',
    ])
      expect(text, name).toContain(name);
    // A file with bad fields is not moved: the user's other values stay where they were.
    expect(existsSync(file)).toBe(true);
  });

  it('reports an unreadable file as BRAID_ERR_CONFIG instead of starting from defaults', () => {
    if (process.getuid?.() === 0) {
      // root reads any file; a directory in the file's place is unreadable as a file for anyone.
      rmSync(file, { force: true });
      writeFileSync(join(dir, 'x'), '');
    }
    const target = process.getuid?.() === 0 ? dir : file;
    if (target === file) {
      writeFileSync(file, '{}');
      chmodSync(file, 0o000);
    }
    try {
      loadSettings(target, NOW);
      expect.unreachable('loadSettings should throw');
    } catch (err) {
      expect(isBraidError(err) && err.code).toBe('BRAID_ERR_CONFIG');
    }
  });

  it('leaves what is there intact and no temporary file when the rename fails', () => {
    // A non-empty directory where the file should be: rename(2) over it fails.
    mkdirSync(file);
    writeFileSync(join(file, 'keep'), 'x');
    let caught: unknown;
    try {
      saveSettings(file, { ...defaultSettings(), proxyPort: 4000 });
    } catch (err) {
      caught = err;
    }
    expect(isBraidError(caught) && caught.code).toBe('BRAID_ERR_CONFIG');
    expect(readFileSync(join(file, 'keep'), 'utf8')).toBe('x');
    expect(readdirSync(dir)).toEqual(['settings.json']);
  });
});
