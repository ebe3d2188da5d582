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
