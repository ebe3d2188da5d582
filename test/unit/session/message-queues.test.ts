import { describe, expect, it } from 'vitest';
import { MessageReceiver } from '../../../core/session/message-receiver.js';
import { MessageSendQueue } from '../../../core/session/message-send-queue.js';

const b = (s: string): Buffer => Buffer.from(s);
const text = (d: Uint8Array): string => Buffer.from(d).toString();

function collect(): { out: string[]; deliver: (d: Uint8Array) => void } {
  const out: string[] = [];
  return { out, deliver: (d) => out.push(text(d)) };
}

describe('message send queue', () => {
  it('keeps a reliable message until acknowledged and re-sends it first after a loss', () => {
    const q = new MessageSendQueue('reliable-unordered', 0);
    q.push(b('a'), 0);
    q.push(b('b'), 0);
    const a = q.peek(100, 0)!;
    q.taken(a);
    const m = q.peek(100, 0)!;
    q.taken(m);
    expect(q.bufferedBytes).toBe(2);
    q.onLost(a.number);
    q.onLost(a.number); // a second loss report queues it once
    q.push(b('c'), 0);
    expect(q.peek(100, 0)!.number).toBe(a.number);
    q.taken(q.peek(100, 0)!);
    expect(q.stats.retransmitted).toBe(1);
    expect(text(q.peek(100, 0)!.data)).toBe('c');
    q.onAcked(a.number);
    q.onAcked(1);
    expect(q.drained).toBe(false); // 'c' is still queued
    q.taken(q.peek(100, 0)!);
    q.onAcked(2);
    expect(q.drained).toBe(true);
    expect(q.bufferedBytes).toBe(0);
  });

  it('does not re-send a reliable message whose other copy was acknowledged', () => {
    const q = new MessageSendQueue('reliable-unordered', 0);
    q.push(b('x'), 0);
    const x = q.peek(100, 0)!;
    q.taken(x);
    q.onLost(x.number);
    q.onAcked(x.number);
    expect(q.peek(100, 0)).toBeUndefined();
    expect(q.drained).toBe(true);
  });

  it('forgets unreliable messages once sent, and never hands out one that does not fit', () => {
    const q = new MessageSendQueue('unreliable-unordered', 0);
    q.push(Buffer.alloc(50), 0);
    expect(q.peek(49, 0)).toBeUndefined();
    const m = q.peek(50, 0)!;
    q.taken(m);
    expect(q.bufferedBytes).toBe(0);
    // Sent but unsettled: a CLOSE must wait for its acknowledgement or loss.
    expect(q.drained).toBe(false);
    q.onLost(m.number);
    expect(q.peek(100, 0)).toBeUndefined();
    expect(q.drained).toBe(true);
    expect(q.stats.lost).toBe(1);
  });

  it('keeps an unreliable message declared lost for the copy a shut path still owes, once, and within its deadline', () => {
    const q = new MessageSendQueue('unreliable-ordered', 100);
    const send = (s: string, now: number) => {
      q.push(b(s), now);
      const m = q.peek(100, now)!;
      q.taken(m);
      return m;
    };
    const owed = send('owed', 0);
    const plain = send('plain', 0);
    const late = send('late', 0);
    q.oweCopy(owed.number);
    q.oweCopy(late.number);
    for (const m of [owed, plain, late]) q.onLost(m.number);
    expect(q.stats.lost).toBe(3);
    // Settled for the session (a CLOSE need not wait), but the owed copy may still go.
    expect(q.drained).toBe(true);
    expect(q.unsettled(owed.number)).toBeUndefined();
    const copy = q.owedCopy(owed.number, 50)!;
    expect(text(copy.data)).toBe('owed');
    q.duplicated(copy); // the owed copy went: one copy, not more
    expect(q.owedCopy(owed.number, 50)).toBeUndefined();
    // No copy was owed: nothing kept. Past the playout deadline: dropped.
    expect(q.owedCopy(plain.number, 50)).toBeUndefined();
    expect(q.owedCopy(late.number, 150)).toBeUndefined();
  });

  it('drops unreliable-ordered messages that waited past the deadline before sending', () => {
    const q = new MessageSendQueue('unreliable-ordered', 100);
    q.push(b('old'), 0);
    q.push(b('new'), 80);
    const m = q.peek(100, 150)!;
    expect(text(m.data)).toBe('new');
    expect(q.stats.expired).toBe(1);
  });
});

describe('message receiver', () => {
  it('unreliable-unordered: delivers on arrival and drops duplicates', () => {
    const r = new MessageReceiver('unreliable-unordered', 0);
    const { out, deliver } = collect();
    for (const n of [3, 1, 3, 0, 1]) r.receive(n, b(String(n)), 0, deliver);
    expect(out).toEqual(['3', '1', '0']);
    expect(r.stats.duplicates).toBe(2);
  });

  it('reliable-unordered: delivers each number exactly once whatever the order', () => {
    const r = new MessageReceiver('reliable-unordered', 0);
    const { out, deliver } = collect();
    const order = [5, 2, 2, 9, 0, 5, 1, 3, 4, 6, 8, 7, 9];
    for (const n of order) r.receive(n, b(String(n)), 0, deliver);
    expect(out.map(Number).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(r.stats.duplicates).toBe(3);
  });

  it('unreliable-ordered: holds messages behind a gap until the deadline, then skips it', () => {
    const r = new MessageReceiver('unreliable-ordered', 50);
    const { out, deliver } = collect();
    r.receive(0, b('0'), 0, deliver);
    r.receive(2, b('2'), 10, deliver);
    r.receive(3, b('3'), 20, deliver);
    expect(out).toEqual(['0']);
    expect(r.nextDeadline).toBe(60);
    r.onTimer(59, deliver);
    expect(out).toEqual(['0']);
    r.onTimer(60, deliver);
    expect(out).toEqual(['0', '2', '3']);
    expect(r.stats.skipped).toBe(1);
    // 1 arrives after its place was skipped: late, never delivered.
    r.receive(1, b('1'), 70, deliver);
    expect(out).toEqual(['0', '2', '3']);
    expect(r.stats.late).toBe(1);
  });

  it('unreliable-ordered: a gap that fills in time delivers everything in order', () => {
    const r = new MessageReceiver('unreliable-ordered', 50);
    const { out, deliver } = collect();
    r.receive(1, b('1'), 0, deliver);
    r.receive(2, b('2'), 0, deliver);
    r.receive(0, b('0'), 30, deliver);
    expect(out).toEqual(['0', '1', '2']);
    expect(r.heldCount).toBe(0);
    expect(r.nextDeadline).toBe(Infinity);
  });

  it('unreliable-ordered: never delivers a message more than the deadline after it arrived', () => {
    // Random arrivals with random gaps; each message's delivery time is checked.
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const r = new MessageReceiver('unreliable-ordered', 40);
    const arrived = new Map<number, number>();
    let now = 0;
    let last = -1;
    const deliver = (d: Uint8Array): void => {
      const n = Number(text(d));
      expect(n).toBeGreaterThan(last);
      last = n;
      expect(now - arrived.get(n)!).toBeLessThanOrEqual(40);
    };
    const late: Array<[number, number]> = [];
    const advance = (to: number): void => {
      // The association arms its timer for nextDeadline; so does this simulation.
      while (r.nextDeadline <= to) {
        now = r.nextDeadline;
        r.onTimer(now, deliver);
      }
      now = to;
    };
    for (let n = 0; n < 5000; n++) {
      advance(now + rand() * 5);
      while (late.length > 0 && late[0]![0] <= now) {
        const m = late.shift()![1];
        arrived.set(m, now);
        r.receive(m, b(String(m)), now, deliver);
      }
      if (rand() < 0.1) continue; // lost
      if (rand() < 0.05) {
        late.push([now + 100, n]); // arrives very late
        continue;
      }
      arrived.set(n, now);
      r.receive(n, b(String(n)), now, deliver);
    }
    expect(r.stats.late + r.stats.skipped).toBeGreaterThan(0);
    expect(r.stats.delivered).toBeGreaterThan(4000);
  });
});

describe('unreliable-ordered playout deadline counted from the send stamp', () => {
  /**
   * One sender and one receiver clock: the sender's clock reads `offset` more than
   * ours at our time 0 and runs (1 + drift) times as fast. Messages take `transit` ms
   * (at least `base`, the smallest one-way delay, which the receiver is told as half
   * a symmetric path's min RTT).
   */
  function link(deadlineMs: number, offsetMs: number, drift = 0, windowMs?: number) {
    const r =
      windowMs === undefined
        ? new MessageReceiver('unreliable-ordered', deadlineMs)
        : new MessageReceiver('unreliable-ordered', deadlineMs, 4096, windowMs);
    const out: Array<{ n: number; at: number }> = [];
    let now = 0;
    const deliver = (d: Uint8Array): void => {
      out.push({ n: Number(text(d)), at: now });
    };
    const stampOf = (sentAt: number): number =>
      Math.round((offsetMs + sentAt * (1 + drift)) * 1000);
    return {
      r,
      out,
      /** Message n sent at our time `sentAt` arrives at `arrival`. */
      arrive(n: number, sentAt: number, arrival: number, oneWayDelayMs = 10): void {
        now = arrival;
        r.receive(n, b(String(n)), arrival, deliver, stampOf(sentAt), oneWayDelayMs);
      },
      timer(to: number): void {
        while (r.nextDeadline <= to && Number.isFinite(r.nextDeadline)) {
          now = r.nextDeadline;
          r.onTimer(now, deliver);
        }
        now = to;
      },
    };
  }

  it('delivers in-order messages on arrival', () => {
    const l = link(50, 1_000_000);
    for (let n = 0; n < 5; n++) l.arrive(n, n * 20, n * 20 + 10);
    expect(l.out).toEqual([0, 1, 2, 3, 4].map((n) => ({ n, at: n * 20 + 10 })));
    expect(l.r.stats).toMatchObject({ delivered: 5, late: 0, skipped: 0, duplicates: 0 });
  });

  it('skips a gap exactly when the message behind it is due: send time + deadline', () => {
    const l = link(50, 123_456.789);
    l.arrive(0, 0, 10); // transit 10 = the one-way delay: offset learnt exactly
    // 1 is lost; 2 is sent at 20 and arrives at 30, slowly-routed 3 at 60.
    l.arrive(2, 20, 30);
    l.arrive(3, 25, 60);
    expect(l.out.map((o) => o.n)).toEqual([0]);
    // Due at 20 + 50 = 70, whatever its arrival (the old rule said 30 + 50 = 80).
    expect(l.r.nextDeadline).toBeCloseTo(70, 6);
    l.timer(69.999);
    expect(l.out.map((o) => o.n)).toEqual([0]);
    l.timer(70);
    expect(l.out).toEqual([
      { n: 0, at: 10 },
      { n: 2, at: 70 },
      { n: 3, at: 70 },
    ]);
    expect(l.r.stats.skipped).toBe(1);
    // 1 turns up after its place was skipped: late, never delivered.
    l.arrive(1, 10, 75);
    expect(l.out).toHaveLength(3);
    expect(l.r.stats.late).toBe(1);
  });

  it('drops a message that arrives after it is due, even next in order, and counts it late', () => {
    const l = link(50, 5_000);
    l.arrive(0, 0, 10);
    // 1 was sent at 20 and took 60 ms (slow path): due at 70, arrives at 80.
    l.arrive(1, 20, 80);
    // 2 arrives in time and is not held behind the late 1.
    l.arrive(2, 40, 81);
    expect(l.out).toEqual([
      { n: 0, at: 10 },
      { n: 2, at: 81 },
    ]);
    expect(l.r.stats).toMatchObject({ delivered: 2, late: 1, skipped: 0 });
    // Exactly at its due time is still in time.
    l.arrive(3, 60, 110);
    expect(l.out.at(-1)).toEqual({ n: 3, at: 110 });
  });

  it('a late message ahead of a gap is neither delivered nor counted as skipped', () => {
    const l = link(50, 0);
    l.arrive(0, 0, 10);
    l.arrive(2, 20, 100); // due 70: late
    l.arrive(3, 30, 40); // held behind 1 (and the dropped 2), due 80
    l.timer(80);
    expect(l.out.map((o) => o.n)).toEqual([0, 3]);
    expect(l.r.stats).toMatchObject({ late: 1, skipped: 1 });
  });

  it('counts duplicates of delivered and of held messages, and delivers each once', () => {
    const l = link(50, 42);
    l.arrive(0, 0, 10);
    l.arrive(0, 0, 12); // a duplicate copy (loss objective) of a delivered message
    l.arrive(2, 20, 30);
    l.arrive(2, 20, 31); // a duplicate of a held message
    l.arrive(1, 10, 32);
    l.arrive(1, 10, 33);
    expect(l.out.map((o) => o.n)).toEqual([0, 1, 2]);
    expect(l.r.stats).toMatchObject({ delivered: 3, duplicates: 3, late: 0 });
  });

  it('learns the clock offset from the smallest transit, whatever the sender clock reads', () => {
    for (const offset of [0, 7.25, 86_400_000, 2 ** 40]) {
      const l = link(100, offset);
      // Transits 30, 12, 25: the smallest, 12, is taken for the 10 ms one-way delay,
      // so the send times are mapped 2 ms late.
      l.arrive(0, 0, 30);
      l.arrive(1, 10, 22);
      l.arrive(3, 30, 55);
      expect(l.r.nextDeadline).toBeCloseTo(30 + 2 + 100, 3);
      expect(l.r.playoutClock.toLocal(offset + 30)).toBeCloseTo(32, 3);
    }
  });

  it('takes each message’s own path delay: a slow path does not map send times late', () => {
    const l = link(50, 777);
    // All traffic on a 40 ms path (min RTT 80), while a 5 ms path exists but is idle.
    l.arrive(0, 0, 40, 40);
    l.arrive(2, 20, 60, 40); // 1 lost
    // Due at 20 + 50 = 70: had the idle fast path's 5 ms been used, 35 ms later.
    expect(l.r.nextDeadline).toBeCloseTo(70, 6);
    // Later messages on the fast path agree.
    l.arrive(3, 30, 35, 5);
    expect(l.r.nextDeadline).toBeCloseTo(70, 6);
  });

  it('follows a drifting sender clock instead of accumulating the drift', () => {
    // The sender's clock runs 200 ppm fast: over 100 s the stamps gain 20 ms.
    const drift = 200e-6;
    const l = link(60, 500, drift);
    let worst = 0;
    let n = 0;
    for (let t = 0; t < 100_000; t += 20, n++) {
      if (n % 50 === 7) continue; // lost: the next ones wait until due
      l.timer(t + 10);
      l.arrive(n, t, t + 10);
    }
    l.timer(200_000);
    // Each delivery happens within the deadline of its true send time, plus the
    // estimate's lag: drift × window (200 ppm × 10 s = 2 ms).
    const sentAt = (k: number): number => k * 20;
    for (const o of l.out) worst = Math.max(worst, o.at - sentAt(o.n));
    expect(worst).toBeLessThanOrEqual(60 + 2.01);
    expect(worst).toBeGreaterThan(59);
    expect(l.r.stats.late).toBe(0);
    expect(l.r.stats.skipped).toBe(Math.ceil(5000 / 50));
    // A clock that never forgot its first sample would be 20 ms off by now:
    // messages would wait 20 ms less than their deadline (the skip at 40 ms).
    const lastSkip = l.out.filter((o) => o.n % 50 === 8).at(-1)!;
    expect(lastSkip.at - sentAt(lastSkip.n)).toBeGreaterThan(57);
  });

  it('never delivers after send time + deadline + the estimate error, under random transit', () => {
    let seed = 11;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const deadline = 40;
    const base = 10; // smallest transit, told as the one-way delay: no estimate error
    const l = link(deadline, 999.5);
    const pending: Array<{ n: number; sentAt: number; at: number }> = [];
    let t = 0;
    for (let n = 0; n < 4000; n++) {
      t += 20;
      if (rand() < 0.08) continue; // lost
      // Message 0 takes the smallest transit, so the clock is exact from the start.
      const transit = n === 0 ? base : base + (rand() < 0.1 ? rand() * 120 : rand() * 15);
      pending.push({ n, sentAt: t, at: t + transit });
    }
    pending.sort((x, y) => x.at - y.at);
    for (const p of pending) {
      l.timer(p.at);
      l.arrive(p.n, p.sentAt, p.at, base);
    }
    l.timer(Infinity);
    let last = -1;
    for (const o of l.out) {
      expect(o.n).toBeGreaterThan(last);
      last = o.n;
      // The estimate error is the smallest transit in the clock's 10 s window less the
      // one-way delay it is told: with ~500 samples of base + U(0, 15) ms, well under 0.5.
      expect(o.at - o.n * 20 - 20).toBeLessThanOrEqual(deadline + 0.5);
    }
    expect(l.r.stats.late).toBeGreaterThan(50);
    expect(l.r.stats.delivered).toBeGreaterThan(3000);
  });
});
