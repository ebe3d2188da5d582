import { describe, expect, it } from 'vitest';
import { cpuBetween, sampleSched, type CpuShare } from './schedstat.js';
import { cpuLine, goodputCell, medianItem, transferCell } from './stats.js';
import { emptySystemReport, type SystemReport } from './suite.js';
import type { BulkResult } from './tools/bulk.js';

describe('lab report: repeated bulk windows', () => {
  it('reports the window whose goodput is the median, as a whole run', () => {
    const runs = [
      { bps: 46.8e6, at: 0 },
      { bps: 47.2e6, at: 1 },
      { bps: 46.9e6, at: 2 },
    ];
    expect(medianItem(runs, (r) => r.bps)).toBe(runs[2]);
    // An even count takes the lower middle window (a run that happened, not a mean).
    expect(medianItem(runs.slice(0, 2), (r) => r.bps)).toBe(runs[0]);
    expect(medianItem([], (r: number) => r)).toBeUndefined();
  });

  it('gives the median with every window beside it, in the order run', () => {
    expect(goodputCell(46.9e6, [46.8e6, 47.2e6, 46.9e6])).toBe('46.90 (46.80, 47.20, 46.90)');
    expect(goodputCell(47.05e6, [47.05e6])).toBe('47.05');
    expect(goodputCell(47.05e6, undefined)).toBe('47.05');
  });
});

describe('lab report: transfer cells', () => {
  it('gives the median of repeated transfers with every run beside it', () => {
    expect(
      transferCell([
        { bytes: 1e6, completionMs: 470 },
        { bytes: 1e6, completionMs: 330 },
        { bytes: 1e6, completionMs: 350 },
      ]),
    ).toBe('0.35 (0.47, 0.33, 0.35)');
    expect(transferCell([{ bytes: 20e6, completionMs: 4030 }])).toBe('4.03');
  });

  it('shows a run that hit the time limit, and a failure, instead of a median that hides them', () => {
    expect(
      transferCell([
        { bytes: 1e6, completionMs: 330 },
        { bytes: 1e6, timedOutMs: 60_000, error: 'timeout' },
      ]),
    ).toBe('> 60.00');
    expect(
      transferCell([
        { bytes: 1e6, completionMs: 330 },
        { bytes: 1e6, error: 'reset' },
      ]),
    ).toBe('failed');
  });
});

describe('lab report: endpoint CPU', () => {
  const system = (label: string, extra: Partial<SystemReport>): SystemReport => ({
    ...emptySystemReport(label, label),
    ...extra,
  });
  const bulk = (cpu?: CpuShare): BulkResult => ({
    bytes: 1,
    windowMs: 1,
    goodputBps: 1,
    firstByteMs: 1,
    binMs: 100,
    bins: [],
    ...(cpu === undefined ? {} : { cpu }),
  });

  it("shows each system's client and server main thread, running and waiting, per second", () => {
    expect(
      cpuLine([
        system('Braid', {
          bulk: bulk({ runMsPerS: 312.4, waitMsPerS: 151.6 }),
          serverCpu: { runMsPerS: 420, waitMsPerS: 200 },
        }),
        system('TCP on wifi', { bulk: bulk({ runMsPerS: 40, waitMsPerS: 2 }) }),
        system('failed run', {}),
      ]),
    ).toBe(
      'Main threads during the bulk runs, ms per s running / waiting for a CPU: ' +
        'Braid: client 312 / 152, server 420 / 200; TCP on wifi: client 40 / 2, server -.',
    );
    expect(cpuLine([system('no schedstat', { bulk: bulk() })])).toBeUndefined();
  });

  it('reads a live thread and turns two samples into ms per second', () => {
    const a = sampleSched('self');
    expect(a).toBeDefined();
    const until = performance.now() + 30;
    while (performance.now() < until) {
      // Busy: the main thread runs for these 30 ms.
    }
    const share = cpuBetween(a, sampleSched('self'))!;
    expect(share.runMsPerS).toBeGreaterThan(300);
    expect(share.runMsPerS).toBeLessThanOrEqual(1000 * 1.05);
    expect(share.waitMsPerS).toBeGreaterThanOrEqual(0);
    expect(sampleSched(2 ** 22 + 1)).toBeUndefined();
    expect(cpuBetween(a, undefined)).toBeUndefined();
  });
});
