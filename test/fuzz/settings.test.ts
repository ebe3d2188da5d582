/**
 * Fuzzing the settings loader (core/host/settings.ts) through real files: JSON that is
 * almost right (settings-shaped objects with wrong types, extra fields, huge numbers,
 * deep nesting) and text that is not JSON at all. `loadSettings` must never throw for
 * the content, must return settings every field of which passes its own validator,
 * and must move a non-JSON file aside rather than delete it.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSettings, SETTINGS_SCHEMA } from '../../core/host/settings.js';
import { damaged, fuzz, LIMITS, RUNS, TIME_LIMIT_MS } from './harness.js';

// A RAM disk where there is one: a million files is a lot of disk writes.
const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const dir = mkdtempSync(join(base, 'braid-settings-fuzz-'));
const file = join(dir, 'settings.json');

const valueArb = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, -1, 0, 1023, 1080, 65535, 65536, 1e308, 'braid://x', '', true),
);
const settingsLikeArb = fc.record(
  {
    version: fc.oneof(fc.constant(1), valueArb),
    relayInvite: fc.oneof(fc.constant('braid://relay:7400#ab?key=cd.ef'), valueArb),
    proxyPort: fc.oneof(fc.integer({ min: 0, max: 70000 }), valueArb),
    launchAtLogin: fc.oneof(fc.boolean(), valueArb),
    globalBypass: fc.oneof(fc.boolean(), valueArb),
    uplinks: fc.oneof(
      fc.dictionary(
        fc.oneof(
          fc.constantFrom('wlan0', 'eth0', 'usb0@if3', '__proto__', 'constructor'),
          fc.string(),
        ),
        fc.record(
          {
            role: fc.oneof(fc.constantFrom('primary', 'secondary', 'backup', 'never'), valueArb),
            capBytes: fc.oneof(fc.nat(), fc.constant(null), valueArb),
          },
          { requiredKeys: [] },
        ),
        { maxKeys: 4 },
      ),
      valueArb,
    ),
    extra: valueArb,
  },
  { requiredKeys: [] },
);
const textArb = fc.oneof(
  { weight: 3, arbitrary: settingsLikeArb.map((o) => JSON.stringify(o)) },
  {
    weight: 2,
    arbitrary: damaged(
      settingsLikeArb.map((o) => new Uint8Array(Buffer.from(JSON.stringify(o)))),
    ).map((b) => b.toString('utf8')),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 3000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  },
);

describe(`settings loader fuzzing (${RUNS} files)`, () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'never throws for a file, returns only valid settings, and moves a broken file aside',
    () => {
      const outcomes = { clean: 0, warned: 0, movedAside: 0 };
      const report = fuzz('settings', textArb, (text) => {
        writeFileSync(file, text);
        const { settings, warnings } = loadSettings(file);
        for (const [k, f] of Object.entries(SETTINGS_SCHEMA)) {
          const r = (f.validate as (x: unknown, w?: string) => { ok: boolean })(
            (settings as Record<string, unknown>)[k],
            k,
          );
          expect(r.ok, k).toBe(true);
        }
        if (!existsSync(file)) {
          outcomes.movedAside++;
          // Kept, not deleted; removed here so the folder stays small.
          const aside = readdirSync(dir).filter((n) => n.includes('.broken-'));
          expect(aside.length).toBeGreaterThan(0);
          for (const n of aside) rmSync(join(dir, n));
        } else if (warnings.length > 0) outcomes.warned++;
        else outcomes.clean++;
      });
      console.log(`  outcomes: ${JSON.stringify(outcomes)}`);
      expect(report.slowestInputMs).toBeLessThan(LIMITS.slowestInputMs);
      expect(report.heapGrowthBytes).toBeLessThan(LIMITS.heapGrowthBytes);
      if (RUNS >= 1000) {
        expect(outcomes.clean).toBeGreaterThan(0);
        expect(outcomes.warned).toBeGreaterThan(0);
        expect(outcomes.movedAside).toBeGreaterThan(0);
      }
    },
    TIME_LIMIT_MS + 30_000,
  );
});
