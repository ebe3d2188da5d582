import { describe, expect, it } from 'vitest';
import { SendStream } from '../../../core/session/send-stream.js';

function bytes(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('SendStream', () => {
  it('hands out new data in order, within the peer window, then a bare FIN', () => {
    const s = new SendStream(100);
    s.write(bytes(150));
    expect(s.nextRange(60)).toEqual({ offset: 0, length: 60, fin: false });
    expect(s.nextRange(60)).toEqual({ offset: 60, length: 40, fin: false });
    expect(s.nextRange(60)).toBeUndefined();
    expect(s.flowBlocked).toBe(true);
    s.peerMaxOffset = 1000;
    s.end();
    expect(s.nextRange(100)).toEqual({ offset: 100, length: 50, fin: true });
    expect(s.nextRange(100)).toBeUndefined();
  });

  it('re-sends a lost range before new data, and only the parts not acknowledged meanwhile', () => {
    const s = new SendStream(1 << 20);
    s.write(bytes(300));
    s.nextRange(100);
    s.nextRange(100);
    s.onAcked(50, 20, false);
    s.onLost(0, 100, false);
    expect(s.nextRange(1000)).toEqual({ offset: 0, length: 50, fin: false });
    expect(s.nextRange(1000)).toEqual({ offset: 70, length: 30, fin: false });
    expect(s.nextRange(1000)).toEqual({ offset: 200, length: 100, fin: false });
    expect(s.retransmittedBytes).toBe(80);
  });

  it('copies bytes across chunk boundaries exactly', () => {
    const s = new SendStream(1 << 20);
    const a = bytes(70, 1);
    const b = bytes(5, 2);
    const c = bytes(90, 3);
    s.write(a);
    s.write(b);
    s.write(c);
    const out = Buffer.alloc(100);
    s.copy(60, 100, out, 0);
    expect(out).toEqual(Buffer.concat([a, b, c]).subarray(60, 160));
  });

  it('frees acknowledged chunks and reports all acked only after the FIN is acknowledged', () => {
    const s = new SendStream(1 << 20);
    s.write(bytes(100));
    s.write(bytes(100));
    s.end();
    const r1 = s.nextRange(150)!;
    const r2 = s.nextRange(150)!;
    expect(r2.fin).toBe(true);
    s.onAcked(r2.offset, r2.length, r2.fin);
    expect(s.ackedPrefix).toBe(0);
    expect(s.allAcked).toBe(false);
    s.onAcked(r1.offset, r1.length, r1.fin);
    expect(s.ackedPrefix).toBe(200);
    expect(s.bufferedBytes).toBe(0);
    expect(s.allAcked).toBe(true);
    expect(() => s.copy(0, 10, Buffer.alloc(10), 0)).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_INTERNAL' }),
    );
  });

  it('sends a lost FIN again even when its data was acknowledged', () => {
    const s = new SendStream(1 << 20);
    s.write(bytes(10));
    s.end();
    const r = s.nextRange(100)!;
    expect(r.fin).toBe(true);
    s.onAcked(0, 10, false);
    s.onLost(0, 10, true);
    expect(s.nextRange(100)).toEqual({ offset: 10, length: 0, fin: true });
  });

  it('refuses a write after end with a typed error', () => {
    const s = new SendStream(100);
    s.end();
    expect(() => s.write(bytes(1))).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_SESSION_STATE' }),
    );
  });
});

describe('SendStream: empty streams', () => {
  it('sends a bare FIN for a stream ended without data, and copying its zero bytes is a no-op', () => {
    const s = new SendStream(100);
    s.end();
    const r = s.nextRange(100)!;
    expect(r).toEqual({ offset: 0, length: 0, fin: true });
    expect(() => s.copy(r.offset, r.length, Buffer.alloc(0), 0)).not.toThrow();
    s.onAcked(0, 0, true);
    expect(s.allAcked).toBe(true);
  });
});

describe('SendStream: head-of-line reinjection', () => {
  it('queues the first gap again only when later bytes are acknowledged, once, and bounded', () => {
    const s = new SendStream(1 << 20);
    s.write(bytes(10_000));
    for (let i = 0; i < 10; i++) s.nextRange(1000);
    // Nothing acknowledged beyond the prefix: no evidence of a hole.
    expect(s.reinjectHead(64_000)).toBe(0);
    // 0..2999 on a slow path; 3000..9999 came through on a fast one.
    s.onAcked(3000, 7000, false);
    expect(s.ackedPrefix).toBe(0);
    expect(s.reinjectHead(2000)).toBe(2000);
    // Already queued: not twice.
    expect(s.reinjectHead(64_000)).toBe(0);
    expect(s.nextRange(5000)).toEqual({ offset: 0, length: 2000, fin: false });
    // Sent again; the rest of the gap may follow on the next stuck tick.
    expect(s.reinjectHead(64_000)).toBe(3000);
    expect(s.nextRange(5000)).toEqual({ offset: 0, length: 3000, fin: false });
    // Whichever copy lands first fills the hole; the other is a no-op.
    s.onAcked(0, 3000, false);
    expect(s.ackedPrefix).toBe(10_000);
    s.onAcked(0, 3000, false);
    expect(s.ackedPrefix).toBe(10_000);
    expect(s.reinjectHead(64_000)).toBe(0);
    expect(s.hasPending).toBe(false);
  });
});
