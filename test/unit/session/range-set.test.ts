import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RangeSet } from '../../../core/session/range-set.js';

/** Plain model: a Set of every integer. */
function modelRanges(values: Set<number>): Array<[number, number]> {
  const sorted = [...values].sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (const v of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === v) last[1] = v + 1;
    else out.push([v, v + 1]);
  }
  return out;
}

const op = fc.record({
  kind: fc.constantFrom('add', 'remove'),
  start: fc.integer({ min: 0, max: 200 }),
  len: fc.integer({ min: 0, max: 30 }),
});

describe('RangeSet', () => {
  it('merges adjacent and overlapping ranges into one', () => {
    const r = new RangeSet();
    r.add(10, 20);
    r.add(20, 30);
    r.add(5, 12);
    expect(r.toArray()).toEqual([[5, 30]]);
  });

  it('matches a plain set of integers under random adds and removes', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const r = new RangeSet();
        const model = new Set<number>();
        for (const o of ops) {
          if (o.kind === 'add') {
            r.add(o.start, o.start + o.len);
            for (let v = o.start; v < o.start + o.len; v++) model.add(v);
          } else {
            r.remove(o.start, o.start + o.len);
            for (let v = o.start; v < o.start + o.len; v++) model.delete(v);
          }
        }
        expect(r.toArray()).toEqual(modelRanges(model));
        expect(r.size).toBe(model.size);
        for (let v = 0; v < 240; v += 7) expect(r.has(v)).toBe(model.has(v));
        const gaps: number[] = [];
        r.forEachGap(0, 240, (s, e) => {
          for (let v = s; v < e; v++) gaps.push(v);
        });
        expect(gaps).toEqual([...Array(240).keys()].filter((v) => !model.has(v)));
      }),
      { numRuns: 500 },
    );
  });
});
