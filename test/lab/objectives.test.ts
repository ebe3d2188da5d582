import { afterAll, describe, expect, it } from 'vitest';
import { deleteNamespaceSync, labUnavailableReason, listNamespaces } from './netns.js';
import { deadlineToleranceMs, poissonUpper95, runObjectives } from './objectives.js';
import { loadScenario } from './scenario.js';
import { rfc3550Jitter } from './tools/bulk.js';
import { NAME_PREFIX } from './topology.js';

/**
 * The objectives section's arithmetic, and (root only, like smoke.test.ts) one cheap
 * objective run in the lab: unreliable-ordered with a playout deadline on scenario b,
 * whose guarantee is absolute — nothing out of order, nothing held past the deadline.
 */

describe('objectives arithmetic', () => {
  it('RFC 3550 jitter: 0 for constant transit, tends to the step for alternating transit', () => {
    expect(rfc3550Jitter([10, 10, 10, 10])).toBe(0);
    const alternating = Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? 10 : 14));
    expect(rfc3550Jitter(alternating)).toBeCloseTo(4, 3);
    // One 16 ms step moves the estimate by 1/16 of it.
    expect(rfc3550Jitter([10, 26])).toBeCloseTo(1, 9);
  });

  it('Poisson 95% upper bound matches the textbook figures', () => {
    // Upper ends of the exact (Garwood) two-sided 95% intervals: k = 0: −ln(0.025) =
    // 3.689; k = 10: χ²(0.975; 22) / 2 = 18.39.
    expect(poissonUpper95(0, 1000)).toBeCloseTo(3.689 / 1000, 5);
    expect(poissonUpper95(10, 20_000)).toBeCloseTo(18.39 / 20_000, 6);
  });
});

const reason = labUnavailableReason();
if (reason !== null) console.warn(`lab objectives test skipped: ${reason}`);

const ours = (): string[] =>
  listNamespaces().filter((n) => n.startsWith(`${NAME_PREFIX}${process.pid}-`));

describe.skipIf(reason !== null)('lab objectives (root, netns, TUN)', () => {
  afterAll(() => {
    const left = ours();
    left.forEach(deleteNamespaceSync);
    expect(left).toEqual([]);
  });

  it('unreliable-ordered on Wi-Fi + lossy LTE: none out of order or past the deadline, buffers within bounds', async () => {
    const report = await runObjectives(loadScenario('b-wifi-lte'), {
      objectives: ['deadline'],
      messages: 150,
      deadlineMs: 100,
      mptcp: false,
    });
    expect(ours()).toEqual([]);
    const d = report.deadline!;
    expect(d.braid.error).toBeUndefined();
    // Almost all arrive (Wi-Fi has no loss; LTE's 1% may take a few).
    expect(d.delivered).toBeGreaterThan(140);
    expect(d.outOfOrder).toBe(0);
    // The deadline counts from send() (DATAGRAM_STAMPED, message-receiver.ts): the
    // receiver maps the sender's clock with half each path's min RTT, so a delivered
    // message is at most the deadline plus that estimate's error after its send (the
    // tolerance: a packet's serialization on the slowest link plus timer slack).
    const scenario = loadScenario('b-wifi-lte');
    expect(d.braid.maxMs).toBeLessThanOrEqual(100 + deadlineToleranceMs(scenario));
    expect(d.afterDeadlineTolerance).toBe(0);
    expect(d.braid.braid!.duplicated).toBe(0);
    expect(d.delivered + d.braid.lost).toBe(150);
    expect(report.peaks).toHaveLength(1);
    expect(report.peaks[0]!.within).toBe(true);
    // The server's counters came back: every message was handed over.
    expect(d.braid.server?.stats.queued).toBe(150);
  });
});
