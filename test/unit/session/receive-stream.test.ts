import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ReceiveStream } from '../../../core/session/receive-stream.js';

function drain(r: ReceiveStream): Buffer {
  const parts: Buffer[] = [];
  for (let c = r.read(); c !== undefined; c = r.read()) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe('ReceiveStream (reorder buffer)', () => {
  it('delivers every byte exactly once and in order whatever the arrival order and duplication', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 2000 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 80 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (data, cuts, order, dups) => {
          const frames: Array<{ offset: number; len: number }> = [];
          let at = 0;
          let i = 0;
          while (at < data.length) {
            const len = Math.min(cuts[i++ % cuts.length]!, data.length - at);
            frames.push({ offset: at, len });
            at += len;
          }
          for (const d of dups) frames.push(frames[d % frames.length]!);
          // Shuffle deterministically from `order`.
          for (let k = frames.length - 1; k > 0; k--) {
            const j = (order[k % Math.max(order.length, 1)] ?? 0) % (k + 1);
            [frames[k], frames[j]] = [frames[j]!, frames[k]!];
          }
          const r = new ReceiveStream(1 << 20);
          const out: Buffer[] = [];
          for (const f of frames) {
            const fin = f.offset + f.len === data.length;
            expect(
              r.receive(f.offset, data.subarray(f.offset, f.offset + f.len), fin),
            ).toBeUndefined();
            out.push(drain(r));
          }
          expect(Buffer.concat(out)).toEqual(Buffer.from(data));
          expect(r.finished).toBe(true);
          expect(r.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects data beyond the advertised window with a flow-control error', () => {
    const r = new ReceiveStream(100);
    expect(r.receive(90, Buffer.alloc(11), false)?.code).toBe('BRAID_ERR_FLOW_CONTROL');
    expect(r.receive(90, Buffer.alloc(10), false)).toBeUndefined();
  });

  it('rejects a moved end of stream and data beyond it', () => {
    const r = new ReceiveStream(1000);
    expect(r.receive(0, Buffer.alloc(10), true)).toBeUndefined();
    expect(r.receive(0, Buffer.alloc(12), true)?.code).toBe('BRAID_ERR_SESSION_STATE');
    expect(r.receive(10, Buffer.alloc(2), false)?.code).toBe('BRAID_ERR_SESSION_STATE');
  });

  it('advertises a new window only after half of it was consumed', () => {
    const r = new ReceiveStream(100);
    r.receive(0, Buffer.alloc(40), false);
    drain(r);
    expect(r.windowUpdate()).toBeUndefined();
    r.receive(40, Buffer.alloc(20), false);
    drain(r);
    expect(r.windowUpdate()).toBe(160);
    expect(r.maxOffset).toBe(160);
  });
});
