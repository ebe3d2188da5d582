import { describe, expect, it } from 'vitest';
import { DiscordanceMonitor } from '../../../core/sched/discordance-monitor.js';
import { BraidError } from '../../../core/util/errors.js';
import { view } from './views.js';

describe('DiscordanceMonitor (paper §III-A, Fig. 2)', () => {
  it('sees no conflict when one path is best for everything', () => {
    const m = new DiscordanceMonitor();
    const paths = [
      view(1, { srtt: 20, jitter: 1, lossRate: 0 }),
      view(2, { srtt: 50, jitter: 9, lossRate: 0.02 }),
    ];
    for (let t = 0; t <= 10_000; t += 100) m.sample(t, paths);
    const s = m.snapshot();
    expect(s.observedMs).toBe(10_000);
    for (const pair of Object.values(s.pairs)) expect(pair).toEqual({ strict: 0, tolerant: 0 });
  });

  it('counts the fraction of time with a conflict, strict and within ε', () => {
    const m = new DiscordanceMonitor();
    // 0..3 s: path 1 is 3 ms faster, path 2 loses less — a strict conflict only.
    // 3..5 s: path 1 is 30 ms faster, path 2 loses 2 % less — a conflict either way.
    // 5..10 s: path 1 best for both.
    const a = view(1);
    const b = view(2);
    for (let t = 0; t <= 10_000; t += 100) {
      if (t < 3000) Object.assign(a, { srtt: 20, lossRate: 0.01 });
      else if (t < 5000) Object.assign(a, { srtt: 20, lossRate: 0.03 });
      else Object.assign(a, { srtt: 20, lossRate: 0 });
      Object.assign(b, { srtt: t < 3000 ? 23 : 50, lossRate: t < 5000 ? 0.008 : 0.01 });
      m.sample(t, [a, b]);
    }
    const s = m.snapshot().pairs['latency/loss'];
    expect(s.strict).toBeCloseTo(0.5, 9);
    expect(s.tolerant).toBeCloseTo(0.2, 9);
  });

  it('finds the latency/jitter conflict the paper describes and how ε removes most of it', () => {
    const m = new DiscordanceMonitor();
    // Deep-buffered path: lower delay but more jitter, by less than 5 ms.
    const paths = [view(1, { srtt: 20, jitter: 6 }), view(2, { srtt: 24, jitter: 2 })];
    m.sample(0, paths);
    m.sample(1000, paths);
    expect(m.snapshot().pairs['latency/jitter']).toEqual({ strict: 1, tolerant: 0 });
  });

  it('does not observe time with fewer than two usable paths, nor long gaps beyond the cap', () => {
    const m = new DiscordanceMonitor({ maxGapMs: 2000 });
    const a = view(1, { srtt: 10, lossRate: 0.05 });
    const b = view(2, { srtt: 90, lossRate: 0, usable: false });
    m.sample(0, [a, b]);
    m.sample(5000, [a, b]);
    expect(m.snapshot().observedMs).toBe(0);
    b.usable = true;
    m.sample(5000, [a, b]);
    m.sample(60_000, [a, b]);
    expect(m.snapshot().observedMs).toBe(2000);
    expect(m.snapshot().pairs['latency/loss'].strict).toBe(1);
  });

  it('refuses a negative tolerance', () => {
    try {
      new DiscordanceMonitor({ epsilon: { loss: -1 } });
      expect.unreachable();
    } catch (err) {
      expect((err as BraidError).code).toBe('BRAID_ERR_CONFIG');
    }
  });
});
