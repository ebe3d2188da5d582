import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PathScore } from '../../../core/paths/estimators.js';
import type { ScoreboardKey } from '../../../core/paths/scoreboard.js';
import { Scoreboard } from '../../../core/paths/scoreboard.js';
import { ManualClock } from '../../../core/util/clock.js';
import { BraidError } from '../../../core/util/errors.js';
import { createMemoryLogger } from '../../../core/util/log.js';

const wifi: ScoreboardKey = {
  localUplink: 'wlan0',
  remoteAddress: '203.0.113.5',
  transport: 'udp',
};
const lte: ScoreboardKey = { localUplink: 'usb0', remoteAddress: '203.0.113.5', transport: 'udp' };
const score: PathScore = {
  srttMs: 20,
  rttvarMs: 3,
  deliveryRate: 4e6,
  lossRate: 0.01,
  jitterMs: 2,
  samples: 1000,
};

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'braid-scoreboard-'));
  dirs.push(dir);
  return join(dir, 'state', 'scoreboard.json');
}

function board(opts: { file?: string; clock?: ManualClock } = {}) {
  const clock = opts.clock ?? new ManualClock(1_700_000_000_000);
  const { logger, lines } = createMemoryLogger('warn');
  const sb = new Scoreboard({
    clock,
    log: logger,
    file: opts.file,
    halfLifeMs: 60_000,
    maxAgeMs: 3600_000,
  });
  return { sb, clock, lines };
}

describe('Scoreboard', () => {
  it('seeds a new path with what the last session measured on the same uplink, peer and transport', () => {
    const { sb } = board();
    sb.record(wifi, score);
    const seed = sb.seed(wifi)!;
    expect(seed).toMatchObject({ ...score, confidence: 1, ageMs: 0 });
    expect(sb.seed(lte)).toBeUndefined();
    expect(sb.seed({ ...wifi, transport: 'tcp' })).toBeUndefined();
  });

  it('decays estimates toward unknown with age and drops them past the maximum age', () => {
    const { sb, clock } = board();
    sb.record(wifi, score);
    clock.advance(60_000); // one half-life
    const seed = sb.seed(wifi)!;
    expect(seed.confidence).toBeCloseTo(0.5, 12);
    expect(seed.srttMs).toBe(20);
    expect(seed.deliveryRate).toBeCloseTo(2e6, 6);
    expect(seed.lossRate).toBeCloseTo(0.005, 12);
    // rttvar halfway between the measured 3 and "unsure" srtt/2 = 10.
    expect(seed.rttvarMs).toBeCloseTo(6.5, 12);
    clock.advance(5 * 60_000); // confidence 1/64 < 0.05
    expect(sb.seed(wifi)).toBeUndefined();
    expect(sb.size).toBe(0);
  });

  it('merges a short session into a long history in proportion to the packets behind each', () => {
    const { sb } = board();
    sb.record(wifi, score);
    sb.record(wifi, { ...score, srttMs: 120, samples: 10 });
    const seed = sb.seed(wifi)!;
    // 10 new packets against 1000 old ones.
    expect(seed.srttMs).toBeCloseTo((10 * 120 + 1000 * 20) / 1010, 9);
  });

  it('refuses figures that are not numbers with a usage error', () => {
    const { sb } = board();
    try {
      sb.record(wifi, { ...score, lossRate: NaN });
      expect.unreachable();
    } catch (err) {
      expect((err as BraidError).code).toBe('BRAID_ERR_USAGE');
    }
  });

  it('persists across a restart through an atomic write', async () => {
    const file = tempFile();
    const clock = new ManualClock(1_700_000_000_000);
    const a = board({ file, clock });
    a.sb.record(wifi, score);
    a.sb.record(lte, { ...score, srttMs: 60 });
    await a.sb.save();
    expect(readdirSync(join(file, '..'))).toEqual(['scoreboard.json']);
    clock.advance(60_000);
    const b = board({ file, clock });
    await b.sb.load();
    expect(b.sb.size).toBe(2);
    expect(b.sb.seed(lte)!.srttMs).toBe(60);
    expect(b.sb.seed(wifi)!.confidence).toBeCloseTo(0.5, 9);
    expect(b.lines).toEqual([]);
  });

  it('starts empty without a file', async () => {
    const { sb, lines } = board({ file: tempFile() });
    await sb.load();
    expect(sb.size).toBe(0);
    expect(lines).toEqual([]);
  });

  it('moves a broken file aside with a warning and starts empty', async () => {
    const file = tempFile();
    const first = board({ file });
    await first.sb.save(); // creates the directory
    writeFileSync(file, '{"version": 1, "entries": [');
    const { sb, lines } = board({ file });
    await sb.load();
    expect(sb.size).toBe(0);
    const names = readdirSync(join(file, '..'));
    expect(names.some((n) => n.startsWith('scoreboard.json.broken-'))).toBe(true);
    expect(names).not.toContain('scoreboard.json');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn' });
    expect(String(lines[0]!.reason)).toMatch(/not JSON/);
    // The next save writes a good file again.
    sb.record(wifi, score);
    await sb.save();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ version: 1 });
  });

  it('skips a bad entry field by field and keeps the good ones', async () => {
    const file = tempFile();
    const a = board({ file });
    a.sb.record(wifi, score);
    await a.sb.save();
    const data = JSON.parse(readFileSync(file, 'utf8')) as { entries: unknown[] };
    data.entries.push({ key: { ...lte, transport: 'sctp' }, ...score, updatedAt: 0 });
    data.entries.push({ key: lte, ...score, lossRate: 7, updatedAt: 0 });
    writeFileSync(file, JSON.stringify(data));
    const { sb, lines } = board({ file });
    await sb.load();
    expect(sb.size).toBe(1);
    expect(lines.map((l) => l.reason)).toEqual([
      'unknown transport sctp',
      'lossRate above 1',
      undefined,
    ]);
  });

  it('keeps at most maxEntries, dropping the least recently recorded', () => {
    const clock = new ManualClock(0);
    const { logger } = createMemoryLogger();
    const sb = new Scoreboard({ clock, log: logger, maxEntries: 2 });
    sb.record(wifi, score);
    sb.record(lte, score);
    sb.record(wifi, score); // wifi is now the most recent
    sb.record({ ...lte, transport: 'tcp' }, score);
    expect(sb.snapshot().map((e) => e.key.localUplink + e.key.transport)).toEqual([
      'wlan0udp',
      'usb0tcp',
    ]);
  });
});
