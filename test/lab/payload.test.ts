import { describe, expect, it } from 'vitest';
import {
  encodeMessage,
  fillPattern,
  MessageReceiver,
  patternByte,
  PatternSource,
  PatternVerifier,
  percentile,
} from './tools/payload.js';

/** Splits `data` into chunks of pseudo-random sizes (1..max), deterministic per seed. */
function chunks(data: Buffer, seed: number, max = 5000): Buffer[] {
  const out: Buffer[] = [];
  let x = seed;
  for (let i = 0; i < data.length;) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (x % max);
    out.push(data.subarray(i, i + n));
    i += n;
  }
  return out;
}

function verify(data: Buffer, expected?: number, seed = 7): ReturnType<PatternVerifier['finish']> {
  const v = new PatternVerifier();
  for (const c of chunks(data, seed)) v.push(c);
  return v.finish(expected);
}

describe('position pattern', () => {
  it('writes each byte as patternByte says, across the 32-bit and 48-bit carries', () => {
    for (const base of [0, 5, 2 ** 32 - 13, 2 ** 32 - 96, 2 ** 40 + 3, 2 ** 48 - 100]) {
      const buf = fillPattern(Buffer.alloc(211), base);
      const want = Buffer.from(Array.from({ length: buf.length }, (_, i) => patternByte(base + i)));
      expect(buf.equals(want), `offset ${base}`).toBe(true);
    }
  });

  const source = new PatternSource();
  const stream = Buffer.concat([source.next(65_536), source.next(1000), source.next(40_003)]);

  it('accepts an intact stream however it is chunked', () => {
    for (const seed of [1, 2, 3]) {
      expect(verify(stream, stream.length, seed)).toEqual({
        checkedBytes: stream.length,
        lostBytes: 0,
        duplicatedBytes: 0,
        corruptBytes: 0,
      });
    }
  });

  it('counts a gap as lost bytes, wherever it starts', () => {
    for (const [at, n] of [
      [1000, 800],
      [1003, 101],
      [50_000, 13],
    ] as const) {
      const cut = Buffer.concat([stream.subarray(0, at), stream.subarray(at + n)]);
      const r = verify(cut, stream.length);
      expect(r.lostBytes).toBe(n);
      expect(r.duplicatedBytes).toBe(0);
      expect(r.checkedBytes).toBeGreaterThan(cut.length - 40);
    }
  });

  it('counts a repeated range as duplicated bytes', () => {
    const dup = Buffer.concat([
      stream.subarray(0, 3000),
      stream.subarray(2000, 3000),
      stream.subarray(3000),
    ]);
    const r = verify(dup, stream.length);
    expect(r.duplicatedBytes).toBe(1000);
    expect(r.lostBytes).toBe(0);
  });

  it('counts flipped bytes as corrupt and a missing tail as lost', () => {
    const bad = Buffer.from(stream);
    bad[5000] = bad[5000]! ^ 0xff;
    bad[5001] = bad[5001]! ^ 0x01;
    const r = verify(bad.subarray(0, 90_000), stream.length);
    expect(r.corruptBytes).toBeGreaterThanOrEqual(2);
    expect(r.lostBytes).toBe(stream.length - 90_000);
  });
});

describe('messages', () => {
  it('measures one-way delay and counts lost, duplicated and damaged records', () => {
    let now = 1000;
    const rx = new MessageReceiver(1024, 5, () => now);
    const m = [0, 1, 2, 3, 4].map((seq) => encodeMessage(seq, 1024, 990 + seq));
    const damaged = Buffer.from(m[4]!);
    damaged[500] = damaged[500]! ^ 1;
    const wire = Buffer.concat([m[0]!, m[2]!, m[2]!, m[3]!, damaged]);
    rx.push(wire.subarray(0, 1500));
    now = 1010;
    rx.push(wire.subarray(1500));
    const s = rx.finish();
    expect(s.received).toBe(4);
    expect(s.lost).toBe(2); // seq 1 skipped, seq 4 damaged so never seen
    expect(s.duplicated).toBe(1);
    expect(s.corrupt).toBe(1);
    expect(s.delaysMs).toEqual([10, 18, 18, 17]);
    expect(percentile(s.delaysMs, 50)).toBe(17);
    expect(percentile(s.delaysMs, 99)).toBe(18);
  });
});
