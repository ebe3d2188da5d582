import { describe, expect, it } from 'vitest';
import { summarizeFairness, type FairnessRun } from './fairness.js';
import { median } from './stats.js';

const run = (
  label: string,
  round: number,
  ratio: number | undefined,
  share = 0.5,
): FairnessRun => ({
  label,
  round,
  ...(ratio === undefined ? {} : { ratio }),
  flows: [
    { label: 'multipath', goodputBps: 1, share },
    { label: 'tcp', goodputBps: 1, share: 1 - share },
  ],
});

describe('fairness rounds', () => {
  it('median of odd and even counts, none for no values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeUndefined();
  });

  it('a plan is judged on the median of its rounds, failed rounds counted apart', () => {
    const runs: FairnessRun[] = [
      run('coupled', 1, 1.6, 0.62),
      run('uncoupled', 1, 1.9, 0.66),
      run('coupled', 2, 0.9, 0.47),
      { label: 'uncoupled', round: 2, flows: [], error: 'client exited 1' },
      run('coupled', 3, 1.1, 0.52),
      run('uncoupled', 3, 1.5, 0.6),
    ];
    const [coupled, uncoupled] = summarizeFairness(runs);
    expect(coupled).toMatchObject({ label: 'coupled', ratios: [1.6, 0.9, 1.1], failures: 0 });
    expect(coupled!.medianRatio).toBeCloseTo(1.1);
    expect(coupled!.medianShare).toBeCloseTo(0.52);
    expect(uncoupled).toMatchObject({ label: 'uncoupled', ratios: [1.9, 1.5], failures: 1 });
    expect(uncoupled!.medianRatio).toBeCloseTo(1.7);
  });

  it('plans without a multipath flow have shares but no ratio', () => {
    const [alone] = summarizeFairness([run('TCP alone', 1, undefined, 1)]);
    expect(alone!.medianRatio).toBeUndefined();
    expect(alone!.medianShare).toBe(1);
  });
});
