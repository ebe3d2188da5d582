import { describe, expect, it } from 'vitest';
import { JitterScheduler } from '../../../core/sched/jitter-scheduler.js';
import { LatencyScheduler } from '../../../core/sched/latency-scheduler.js';
import { LOSS_EVIDENCE_PACKETS, LossScheduler } from '../../../core/sched/loss-scheduler.js';
import {
  createPathView,
  createSchedContext,
  expectedArrivalMs,
  fillPathView,
} from '../../../core/sched/path-view.js';
import { PathEstimator } from '../../../core/paths/estimators.js';
import { PathRecovery } from '../../../core/paths/path-recovery.js';
import { ManualClock } from '../../../core/util/clock.js';
import { BraidError } from '../../../core/util/errors.js';
import { ThroughputScheduler } from '../../../core/sched/throughput-scheduler.js';
import { seededRandom } from '../../support/impaired-subflow.js';
import { fraction, shares, view } from './views.js';

const reliable = createSchedContext('reliable-ordered');
const unreliable = createSchedContext('unreliable-unordered');

describe('ThroughputScheduler (DRR with rate quanta, ECF)', () => {
  it('splits bytes in proportion to delivery rate', () => {
    const s = new ThroughputScheduler();
    const views = [view(1, { deliveryRate: 10e6 }), view(2, { deliveryRate: 5e6 }), view(3)];
    const m = shares(s, { ...reliable, backlogBytes: 1e9 }, views, 30_000);
    expect(fraction(m, 1)).toBeCloseTo(10 / 16, 2);
    expect(fraction(m, 2)).toBeCloseTo(5 / 16, 2);
    expect(fraction(m, 3)).toBeCloseTo(1 / 16, 2);
  });

  it('discounts a lossy path by the bytes it loses on reliable sessions only', () => {
    const views = [view(1, { deliveryRate: 1e6, lossRate: 0.5 }), view(2, { deliveryRate: 1e6 })];
    const r = shares(new ThroughputScheduler(), reliable, views, 30_000);
    expect(fraction(r, 1)).toBeCloseTo(1 / 3, 2);
    const u = shares(new ThroughputScheduler(), unreliable, views, 30_000);
    expect(fraction(u, 1)).toBeCloseTo(1 / 2, 2);
  });

  it('waits for the fast path instead of sending a short backlog on a slow one (ECF)', () => {
    const s = new ThroughputScheduler();
    // The fast path's window is full; the slow path (300 ms) has room.
    const fast = view(1, { srtt: 20, canSend: false, bytesInFlight: 100_000, cwnd: 100_000 });
    const slow = view(2, { srtt: 300, deliveryRate: 1e6 });
    const short = s.pick({ ...reliable, backlogBytes: 20_000 }, [fast, slow], 1200, 1000);
    expect(short.index).toBe(-1);
    expect(short.retryAt).toBeGreaterThan(1000);
    expect(short.retryAt).toBeLessThan(1000 + 40);
    expect(s.ecfWaits).toBe(1);
    // A bulk backlog: the slow path helps, since the fast one alone would take longer.
    const bulk = s.pick({ ...reliable, backlogBytes: 50e6 }, [fast, slow], 1200, 1000);
    expect(bulk.pathId).toBe(2);
  });

  it('moves the tail of a transfer from the slow path DRR chose to the fast one, which has room (ECF)', () => {
    // Lab scenario c: Wi-Fi 30 Mbit/s 20 ms and a tethered phone 3 Mbit/s 100 ms that
    // already holds 40 KB (about 110 ms of queue).
    const fast = view(1, { srtt: 20, minRtt: 20, deliveryRate: 3.75e6, cwnd: 1e6 });
    const slow = view(2, { srtt: 110, minRtt: 100, deliveryRate: 375e3, bytesInFlight: 40_000 });
    const bulk = { ...reliable, backlogBytes: 50e6 };
    const tail = { ...reliable, backlogBytes: 30_000 };
    // Two schedulers fed the same picks: when DRR gives `probe` the slow path for its
    // share of a bulk backlog, `s` (same state) gets the last 30 KB of a transfer instead.
    const probe = new ThroughputScheduler();
    const s = new ThroughputScheduler();
    let moved: number | undefined;
    for (let i = 0; i < 500 && moved === undefined; i++) {
      if (probe.pick(bulk, [fast, slow], 1200, 0).pathId === 2) {
        expect(probe.ecfRedirects).toBe(0);
        const credit = s.credit(2);
        const fastCredit = s.credit(1);
        moved = s.pick(tail, [fast, slow], 1200, 0).pathId;
        // The packet took the slow path's turn: its credit pays, not the fast path's.
        expect(s.credit(2)).toBe(credit - 1200);
        expect(s.credit(1)).toBe(fastCredit);
      } else s.pick(bulk, [fast, slow], 1200, 0);
    }
    // The fast path delivers all 30 KB (8 ms + 10 ms) long before a packet queued
    // behind 40 KB on the phone arrives (about 60 ms): it goes on Wi-Fi.
    expect(moved).toBe(1);
    expect(s.ecfRedirects).toBe(1);
  });

  it('keeps the rounds going while ECF moves every packet of a slow path: a third path keeps its share', () => {
    // The fast path delivers a 100 KB backlog in about 13 ms; a packet on path 3 arrives
    // in about 6 ms, on the slow path in about 50: ECF moves each of the slow path's
    // packets to the fast one, never path 3's.
    const fast = view(1, { srtt: 4, minRtt: 4, rttvar: 1, deliveryRate: 10e6, cwnd: 1e9 });
    const slow = view(2, { srtt: 100, minRtt: 100, rttvar: 1, deliveryRate: 5e6, cwnd: 1e9 });
    const third = view(3, { srtt: 10, minRtt: 10, rttvar: 1, deliveryRate: 5e6, cwnd: 1e9 });
    const s = new ThroughputScheduler();
    const m = shares(s, { ...reliable, backlogBytes: 100_000 }, [fast, slow, third], 30_000);
    expect(s.ecfRedirects).toBeGreaterThan(5000);
    expect(fraction(m, 2)).toBe(0);
    // Path 3's quantum is a quarter of each round's; the fast path takes its own and the slow one's.
    expect(fraction(m, 3)).toBeCloseTo(0.25, 2);
    expect(fraction(m, 1)).toBeCloseTo(0.75, 2);
    // Nobody runs up a debt: each credit stays within a round's quanta.
    for (const id of [1, 2, 3]) expect(Math.abs(s.credit(id))).toBeLessThan(2 * 64 * 1024);
  });

  /**
   * Path 1 (gain 1) is paced: one packet, then its pacer shuts for 0.3 ms; with
   * `fullEvery` its window is also full every so often (it waits for an ACK). Path 2 has
   * gain 0.05 and could always send. The engine asks again at each decision's retry
   * time, as the association does. Returns the bytes per path id.
   */
  function pacedPair(held: Uint8Array | null, fullEvery: number): Map<number, number> {
    const s = new ThroughputScheduler();
    const gains = new Float64Array([1, 0.05]);
    const bytes = new Map([
      [1, 0],
      [2, 0],
    ]);
    let now = 0;
    let release = 0;
    for (let step = 0; step < 20_000; step++) {
      const full = fullEvery > 0 && step % fullEvery === 0;
      const fast = view(1, {
        canSend: !full && release <= now,
        sendAt: release,
        bytesInFlight: full ? 100_000 : 0,
      });
      const ctx = { ...reliable, backlogBytes: 1e9 };
      const d = s.pickWeighted(ctx, [fast, view(2)], gains, 1200, now, held);
      if (d.index >= 0) {
        bytes.set(d.pathId, bytes.get(d.pathId)! + 1200);
        if (d.pathId === 1) release = now + 0.3;
      } else now = Number.isFinite(d.retryAt) ? Math.max(now, d.retryAt) : now + 0.1;
    }
    return bytes;
  }

  it("holds a path the app's feedback penalises to its gain share while the other path is paced or full", () => {
    for (const fullEvery of [0, 7]) {
      const bytes = pacedPair(new Uint8Array([0, 1]), fullEvery);
      expect(bytes.get(1)).toBeGreaterThan(1e6);
      // 0.05 / 1.05 of the bytes is its share. The old rule gave it a new round in every
      // gap of path 1's pacer: here all of them, since it could always send.
      expect(fraction(bytes, 2)).toBeLessThan(0.08);
      expect(fraction(bytes, 2)).toBeGreaterThan(0.02);
    }
    // A gain from the combiner's stages alone (not held) stays work-conserving: the
    // path takes the gaps of the other.
    expect(fraction(pacedPair(null, 0), 2)).toBeGreaterThan(0.5);
    // Alone (the other path gone), a held path carries everything: nothing to wait for.
    const alone = new ThroughputScheduler();
    const one = new Float64Array([0.05]);
    for (let i = 0; i < 100; i++) {
      const d = alone.pickWeighted(reliable, [view(2)], one, 1200, 0, new Uint8Array([1]));
      expect(d.pathId).toBe(2);
    }
  });

  it("does not move a packet by ECF onto a path the app's feedback holds back", () => {
    const s = new ThroughputScheduler();
    // Path 2 is the faster one but held; path 1 carries the short backlog.
    const slow = view(1, { srtt: 40, minRtt: 40 });
    const fastHeld = view(2, { srtt: 5, minRtt: 5 });
    const gains = new Float64Array([1, 0.1]);
    const held = new Uint8Array([0, 1]);
    const ctx = { ...reliable, backlogBytes: 5000 };
    for (let i = 0; i < 50; i++) {
      const d = s.pickWeighted(ctx, [slow, fastHeld], gains, 1200, 0, held);
      if (d.pathId === 1) continue;
      expect(d.pathId).toBe(2);
    }
    expect(s.ecfRedirects).toBe(0);
  });

  it('says when to ask again when no path can send: the pacer release, else the next ACK', () => {
    const s = new ThroughputScheduler();
    const paced = view(1, { canSend: false, sendAt: 1003 });
    const full = view(2, { canSend: false, bytesInFlight: 100_000, cwnd: 100_000, sendAt: 1000 });
    expect(s.pick(reliable, [paced, full], 1200, 1000).retryAt).toBe(1003);
    expect(s.pick(reliable, [full], 1200, 1000).retryAt).toBe(Infinity);
  });

  it('uses a backup path only when no other is usable, and never a "never" path', () => {
    const s = new ThroughputScheduler();
    const views = [view(1, { role: 'backup' }), view(2), view(3, { role: 'never' })];
    let m = shares(s, reliable, views, 100);
    expect(m.get(1)).toBe(0);
    expect(m.get(3)).toBe(0);
    views[1]!.usable = false;
    m = shares(s, reliable, views, 100);
    expect(m.get(1)).toBe(120_000);
    expect(m.get(3)).toBe(0);
  });

  it('uses a secondary path only while no primary can send (demand beyond the primaries)', () => {
    const s = new ThroughputScheduler();
    const primary = view(1);
    const secondary = view(2, { role: 'secondary' });
    expect(shares(s, reliable, [primary, secondary], 100).get(2)).toBe(0);
    primary.canSend = false;
    primary.bytesInFlight = primary.cwnd;
    expect(s.pick(reliable, [primary, secondary], 1200, 0).pathId).toBe(2);
  });

  it('keeps to the single path the guard chose, and to all if that path is gone', () => {
    const s = new ThroughputScheduler();
    const views = [view(1), view(2)];
    expect(shares(s, { ...reliable, onlyPathId: 2 }, views, 50).get(1)).toBe(0);
    expect(shares(s, { ...reliable, onlyPathId: 9 }, views, 50).get(1)).toBeGreaterThan(0);
  });

  it('refuses a path id that is not a small non-negative integer', () => {
    const s = new ThroughputScheduler();
    try {
      s.pick(reliable, [view(-1)], 1200, 0);
      expect.unreachable();
    } catch (err) {
      expect((err as BraidError).code).toBe('BRAID_ERR_INTERNAL');
    }
    // Large ids grow the credit table.
    expect(s.pick(reliable, [view(5000)], 1200, 0).pathId).toBe(5000);
    expect(s.credit(5000)).toBeGreaterThan(0);
    s.remove(5000);
    expect(s.credit(5000)).toBe(0);
  });

  it('returns the same decision object every time (no allocation per packet)', () => {
    const s = new ThroughputScheduler();
    const views = [view(1), view(2)];
    const a = s.pick(reliable, views, 1200, 0);
    const b = s.pick(reliable, views, 1200, 0);
    expect(a).toBe(b);
  });
});

describe('LatencyScheduler (earliest expected arrival)', () => {
  it('sends on the lowest-delay path, and moves when its socket queue makes it late', () => {
    const s = new LatencyScheduler();
    const a = view(1, { srtt: 20, kind: 'tcp' });
    const b = view(2, { srtt: 40 });
    expect(s.pick(reliable, [a, b], 1200, 0).pathId).toBe(1);
    // 50 kB unsent in a's socket at 1 MB/s = 50 ms of queue: b (20 ms one way) wins.
    a.queuedBytes = 50_000;
    expect(s.pick(reliable, [a, b], 1200, 0).pathId).toBe(2);
  });

  it('waits for a paced fast path rather than send on a much slower one', () => {
    const s = new LatencyScheduler();
    const a = view(1, { srtt: 20, canSend: false, sendAt: 2 });
    const b = view(2, { srtt: 200 });
    const d = s.pick(reliable, [a, b], 1200, 0);
    expect(d.index).toBe(-1);
    expect(d.retryAt).toBe(2);
  });

  it('charges a lossy path its expected retransmission on reliable sessions', () => {
    const s = new LatencyScheduler();
    const lossy = view(1, { srtt: 20, lossRate: 0.3 });
    const clean = view(2, { srtt: 30 });
    expect(expectedArrivalMs(lossy, 1200, 0, true)).toBeGreaterThan(
      expectedArrivalMs(clean, 1200, 0, true),
    );
    expect(s.pick(reliable, [lossy, clean], 1200, 0).pathId).toBe(2);
    expect(s.pick(unreliable, [lossy, clean], 1200, 0).pathId).toBe(1);
  });
});

describe('JitterScheduler (steadiest path with hysteresis)', () => {
  it('holds one path while two similar paths trade places in noise', () => {
    const s = new JitterScheduler();
    const random = seededRandom(1);
    const a = view(1, { jitter: 8 });
    const b = view(2, { jitter: 9 });
    const used = new Set<number>();
    for (let t = 0; t < 60_000; t += 10) {
      a.jitter = 8 + 3 * random();
      b.jitter = 8 + 3 * random();
      used.add(s.pick(reliable, [a, b], 1200, t).pathId);
    }
    expect(s.switches).toBe(0);
    expect(used.size).toBe(1);
  });

  it('moves to a clearly steadier path only after it stayed better for the hold time', () => {
    const s = new JitterScheduler({ holdMs: 2000 });
    const a = view(1, { jitter: 10 });
    const b = view(2, { jitter: 30 });
    expect(s.pick(reliable, [a, b], 1200, 0).pathId).toBe(1);
    a.jitter = 40;
    b.jitter = 5;
    expect(s.pick(reliable, [a, b], 1200, 100).pathId).toBe(1);
    expect(s.pick(reliable, [a, b], 1200, 2000).pathId).toBe(1);
    expect(s.pick(reliable, [a, b], 1200, 2100).pathId).toBe(2);
    expect(s.switches).toBe(1);
  });

  it('leaves a path at once when it becomes unusable', () => {
    const s = new JitterScheduler();
    const a = view(1, { jitter: 1 });
    const b = view(2, { jitter: 30 });
    expect(s.pick(reliable, [a, b], 1200, 0).pathId).toBe(1);
    a.usable = false;
    expect(s.pick(reliable, [a, b], 1200, 1).pathId).toBe(2);
  });
});

describe('LossScheduler', () => {
  it('duplicates an unreliable packet until the residual loss is below the target', () => {
    const views = [
      view(1, { lossRate: 0.05 }),
      view(2, { lossRate: 0.03 }),
      view(3, { lossRate: 0.01 }),
    ];
    const two = new LossScheduler({ targetLoss: 0.001, maxCopies: 3 });
    const d = two.pick(unreliable, views, 1200, 0);
    expect(d.pathId).toBe(3);
    expect(Array.from(d.duplicates.subarray(0, d.duplicateCount))).toEqual([1]);
    expect(LossScheduler.residual(d, views)).toBeCloseTo(0.0003, 9);
    // A stricter target takes all three paths, the cap limits it.
    const three = new LossScheduler({ targetLoss: 1e-6, maxCopies: 3 });
    expect(three.pick(unreliable, views, 1200, 0).duplicateCount).toBe(2);
    const capped = new LossScheduler({ targetLoss: 1e-6, maxCopies: 2 });
    expect(capped.pick(unreliable, views, 1200, 0).duplicateCount).toBe(1);
  });

  it('does not duplicate onto a path that cannot send now but waits for it; no copies when one path is clean', () => {
    const s = new LossScheduler({ maxCopies: 3 });
    // The copy path's window is full: wait for an ACK to open it, not send alone.
    const full = [
      view(1, { lossRate: 0.04 }),
      view(2, { lossRate: 0.05, canSend: false, bytesInFlight: 100_000 }),
    ];
    const d = s.pick(unreliable, full, 1200, 0);
    expect(d.index).toBe(-1);
    expect(d.retryAt).toBe(Infinity);
    // Its pacer releases at 3 ms: ask again then.
    const paced = [
      view(1, { lossRate: 0.04 }),
      view(2, { lossRate: 0.05, canSend: false, sendAt: 3 }),
    ];
    expect(s.pick(unreliable, paced, 1200, 0).retryAt).toBe(3);
    // A backlogged session does not wait: the copy is owed to the shut path (sent when
    // its window opens), not dropped.
    const busy = { ...unreliable, backlogBytes: 33 * 1200 };
    const sent = s.pick(busy, full, 1200, 0);
    expect(sent.pathId).toBe(1);
    expect(sent.duplicateCount).toBe(0);
    expect(sent.deferredCount).toBe(1);
    expect(sent.deferred[0]).toBe(1);
    // Not eligible (down): no copy, no wait.
    const down = [view(1, { lossRate: 0.05 }), view(2, { lossRate: 0.04, usable: false })];
    const alone = s.pick(unreliable, down, 1200, 0);
    expect(alone.pathId).toBe(1);
    expect(alone.duplicateCount).toBe(0);
    expect(alone.deferredCount).toBe(0);
    const clean = [view(1, { lossRate: 0 }), view(2, { lossRate: 0.04 })];
    expect(s.pick(unreliable, clean, 1200, 0).duplicateCount).toBe(0);
    // A clean primary needs no copy, so a shut copy path is no reason to wait.
    const cleanShut = [view(1, { lossRate: 0 }), view(2, { lossRate: 0.04, canSend: false })];
    expect(s.pick(unreliable, cleanShut, 1200, 0).pathId).toBe(1);
  });

  it('duplicates while a path has too few packets behind its loss rate to call it clean', () => {
    const s = new LossScheduler({ maxCopies: 2 });
    // A session's first packets: no loss seen yet, because nothing was measured yet.
    const fresh = [
      view(1, { lossRate: 0, lossSamples: 0 }),
      view(2, { lossRate: 0, lossSamples: 0 }),
    ];
    expect(s.pick(unreliable, fresh, 1200, 0).duplicateCount).toBe(1);
    const early = [
      view(1, { lossRate: 0, lossSamples: LOSS_EVIDENCE_PACKETS - 1 }),
      view(2, { lossRate: 0.03, lossSamples: 50 }),
    ];
    expect(s.pick(unreliable, early, 1200, 0).duplicateCount).toBe(1);
    // Enough packets without a loss: clean, no copies.
    const known = [
      view(1, { lossRate: 0, lossSamples: LOSS_EVIDENCE_PACKETS }),
      view(2, { lossRate: 0.03, lossSamples: 50 }),
    ];
    expect(s.pick(unreliable, known, 1200, 0).duplicateCount).toBe(0);
  });

  it('keeps reliable sessions off lossy paths, without copies, ties within ε going to the earlier arrival', () => {
    const s = new LossScheduler();
    const lossy = view(1, { lossRate: 0.05, srtt: 10 });
    const clean = view(2, { lossRate: 0.001, srtt: 60 });
    const near = view(3, { lossRate: 0.004, srtt: 30 });
    const d = s.pick(reliable, [lossy, clean, near], 1200, 0);
    expect(d.pathId).toBe(3);
    expect(d.duplicateCount).toBe(0);
  });
});

describe('fillPathView', () => {
  it('reads a real PathRecovery and PathEstimator: seed first, then measured, window state', () => {
    const clock = new ManualClock(0);
    const r = new PathRecovery<number>({ kind: 'udp', maxDatagramSize: 1200 }, clock);
    const e = new PathEstimator({ kind: 'udp' });
    e.seed({
      srttMs: 15,
      rttvarMs: 2,
      deliveryRate: 3e6,
      lossRate: 0.02,
      jitterMs: 1,
      samples: 50,
    });
    const v = createPathView(7);
    const path = { usable: true, maxPacketSize: 1200 };
    fillPathView(v, path, r, e, 'secondary', 0);
    expect(v).toMatchObject({ srtt: 15, rttvar: 2, jitter: 1, role: 'secondary', canSend: true });
    expect(v.deliveryRate).toBe(3e6);
    expect(v.lossRate).toBeCloseTo(0.02, 12);
    // Fill the initial window: no room left.
    while (r.sendAllowance() > 0) r.onPacketSent(r.nextPacketNumber(), 1200, true, 0);
    fillPathView(v, path, r, e, 'secondary', 0);
    expect(v.canSend).toBe(false);
    expect(v.bytesInFlight).toBe(r.bytesInFlight);
    clock.advance(30);
    const res = r.onAck([{ first: 0, last: 9 }], 0);
    if (res instanceof Error) throw res;
    e.onAck(30, r, res.acked.length, res.lost.length, r.latestAdjustedRtt);
    fillPathView(v, path, r, e, 'primary', 30);
    expect(v.srtt).toBe(30);
    expect(v.canSend).toBe(true);
  });
});
