import { describe, expect, it } from 'vitest';
import { IdleProber } from '../../../core/paths/idle-prober.js';
import { BraidError } from '../../../core/util/errors.js';
import { seededRandom } from '../../support/impaired-subflow.js';

/** Drives a prober the way the association's timer would, for `seconds` of simulated time. */
function run(
  prober: IdleProber,
  seconds: number,
  opts: { tickMs: number; probeBytes: () => number; busy?: (t: number) => boolean },
): number[] {
  const sentAt: number[] = [];
  for (let t = 0; t <= seconds * 1000; t += opts.tickMs) {
    if (opts.busy?.(t) === true) {
      prober.onSent(t);
      continue;
    }
    if (prober.due(t)) {
      prober.onProbeSent(t, opts.probeBytes());
      sentAt.push(t);
    }
  }
  return sentAt;
}

describe('IdleProber', () => {
  it('never exceeds 1 kbit/s per idle path over ten simulated minutes, whatever the probe sizes', () => {
    const random = seededRandom(5);
    // An aggressive interval so that only the budget limits the prober.
    const prober = new IdleProber(0, { intervalMs: 10, idleAfterMs: 10, probeBytes: 96 });
    let bytes = 0;
    const sizes: number[] = [];
    run(prober, 600, {
      tickMs: 1,
      probeBytes: () => {
        const b = 60 + Math.floor(random() * 140); // 60..199 bytes
        sizes.push(b);
        bytes += b;
        return b;
      },
    });
    // Over any window T: at most 125 B/s·T plus one probe.
    expect(bytes).toBeLessThanOrEqual(125 * 600 + 200);
    // And it does use its budget (figures stay fresh): more than 90 % of it.
    expect(bytes).toBeGreaterThan(0.9 * 125 * 600);
    expect(prober.probeBytesSent).toBe(bytes);
  });

  it('holds the budget in every sliding 10-second window, not just on average', () => {
    const prober = new IdleProber(0, { intervalMs: 1, idleAfterMs: 1, probeBytes: 80 });
    const sent = run(prober, 300, { tickMs: 1, probeBytes: () => 80 });
    for (let i = 0; i < sent.length; i++) {
      let inWindow = 0;
      for (let j = i; j < sent.length && sent[j]! - sent[i]! < 10_000; j++) inWindow += 80;
      expect(inWindow).toBeLessThanOrEqual(125 * 10 + 80);
    }
  });

  it('probes an idle path at its interval and a busy path not at all', () => {
    const prober = new IdleProber(0, { intervalMs: 2000, idleAfterMs: 1000 });
    // Busy for the first 30 s, idle for the next 30 s.
    const sent = run(prober, 60, { tickMs: 10, probeBytes: () => 96, busy: (t) => t < 30_000 });
    // The last busy tick is at 29 990 ms; idle one second later.
    expect(sent[0]).toBe(30_990);
    // Every 2 s from then on: 30.99, 32.99, ..., 58.99 s.
    expect(sent.length).toBe(15);
    for (let i = 1; i < sent.length; i++) expect(sent[i]! - sent[i - 1]!).toBe(2000);
  });

  it('tells the timer when the next probe is due', () => {
    const prober = new IdleProber(0, { intervalMs: 2000, idleAfterMs: 1000 });
    expect(prober.nextDue(0)).toBe(1000);
    prober.onProbeSent(1000, 96);
    expect(prober.nextDue(1000)).toBe(3000);
    expect(prober.due(2999)).toBe(false);
    expect(prober.due(3000)).toBe(true);
  });

  it('refuses a budget of less than one probe a minute', () => {
    try {
      new IdleProber(0, { budgetBitsPerSecond: 1, probeBytes: 96 });
      expect.unreachable();
    } catch (err) {
      expect((err as BraidError).code).toBe('BRAID_ERR_CONFIG');
    }
  });
});
