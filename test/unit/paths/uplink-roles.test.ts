import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataCapLedger } from '../../../core/paths/data-caps.js';
import { roleTiers, stricterRole } from '../../../core/paths/uplink-roles.js';
import { createLogger } from '../../../core/util/log.js';

const quiet = createLogger({ level: 'error' });

describe('uplink roles', () => {
  const p = (id: number, role: 'primary' | 'secondary' | 'backup' | 'never', up = true) => ({
    id,
    role,
    up,
  });

  it('offers backups only when no primary or secondary path is up, and never-paths never', () => {
    const paths = [p(1, 'primary'), p(2, 'secondary'), p(3, 'backup'), p(4, 'never')];
    const t = roleTiers(paths, (x) => x.up);
    expect(t.primary.map((x) => x.id)).toEqual([1]);
    expect(t.secondary.map((x) => x.id)).toEqual([2]);
    expect(t.backup).toEqual([]);
    const down = roleTiers(
      [p(1, 'primary', false), p(2, 'secondary', false), p(3, 'backup')],
      (x) => x.up,
    );
    expect(down.backup.map((x) => x.id)).toEqual([3]);
    expect(roleTiers([p(4, 'never')], (x) => x.up)).toEqual({
      primary: [],
      secondary: [],
      backup: [],
    });
  });

  it('a cap demotes to backup but never promotes', () => {
    expect(stricterRole('primary', 'backup')).toBe('backup');
    expect(stricterRole('never', 'backup')).toBe('never');
    expect(stricterRole('secondary', 'backup')).toBe('backup');
  });
});

describe('data cap ledger', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const file = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'braid-caps-'));
    dirs.push(d);
    return join(d, 'caps.json');
  };

  it('warns at 80%, reports the cap at 100% once each, and keeps the account across restarts', () => {
    const f = file();
    let now = new Date(2026, 10, 3);
    const ledger = new DataCapLedger({ file: f, logger: quiet, now: () => now });
    const seen: string[] = [];
    ledger.on('warning', (u) => seen.push(`warning ${u}`));
    ledger.on('reached', (u) => seen.push(`reached ${u}`));
    ledger.setCap('wwan0', 1000);
    ledger.record('wwan0', 700);
    expect(seen).toEqual([]);
    ledger.record('wwan0', 100);
    ledger.record('wwan0', 50);
    expect(seen).toEqual(['warning wwan0']);
    ledger.record('wwan0', 150);
    ledger.record('wwan0', 10);
    expect(seen).toEqual(['warning wwan0', 'reached wwan0']);
    expect(ledger.isCapped('wwan0')).toBe(true);
    ledger.save();

    const again = new DataCapLedger({ file: f, logger: quiet, now: () => now });
    expect(again.get('wwan0')).toMatchObject({ capBytes: 1000, usedBytes: 1010, reached: true });
    expect(again.isCapped('wwan0')).toBe(true);
    // A new month starts from zero.
    now = new Date(2026, 11, 1);
    expect(again.isCapped('wwan0')).toBe(false);
    expect(again.get('wwan0')!.usedBytes).toBe(0);
  });

  it('moves a broken file aside with a warning and starts again', () => {
    const f = file();
    writeFileSync(f, JSON.stringify({ version: 1, uplinks: { eth0: { capBytes: -5 } } }));
    const ledger = new DataCapLedger({ file: f, logger: quiet });
    expect(ledger.list()).toEqual([]);
    const names = readdirSync(join(f, '..'));
    expect(names.some((n) => n.startsWith('caps.json.broken-'))).toBe(true);
    writeFileSync(f, '{not json');
    expect(new DataCapLedger({ file: f, logger: quiet }).list()).toEqual([]);
  });

  it('refuses a cap that is not a whole number of bytes', () => {
    const ledger = new DataCapLedger({ file: file(), logger: quiet });
    expect(() => ledger.setCap('eth0', -1)).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_CONFIG' }),
    );
    expect(() => ledger.setCap('eth0', 1.5)).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_CONFIG' }),
    );
  });
});
