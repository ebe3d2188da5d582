import { describe, expect, it } from 'vitest';
import { transferCell } from './stats.js';

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
