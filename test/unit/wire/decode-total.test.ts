import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkDecoders, fuzzInputArb, OutcomeTally } from './fuzz-target.js';

describe('decoders on arbitrary input', () => {
  it('never throw, fail only with BRAID_ERR_WIRE_* and re-encode accepted input exactly (100,000 inputs)', () => {
    const tally = new OutcomeTally();
    fc.assert(
      fc.property(fuzzInputArb, (input) => {
        tally.add(checkDecoders(input));
      }),
      // A fixed seed keeps `npm test` reproducible; fuzz.test.ts explores new seeds.
      { numRuns: 100_000, seed: 0x62726169 },
    );
    expect(tally.runs).toBeGreaterThanOrEqual(100_000);
    // The inputs must reach acceptance and every kind of rejection, or the property
    // above proves little.
    for (const outcome of [
      'ok',
      'BRAID_ERR_WIRE_TRUNCATED',
      'BRAID_ERR_WIRE_UNKNOWN_FRAME',
      'BRAID_ERR_WIRE_BAD_VALUE',
      'BRAID_ERR_WIRE_TOO_LARGE',
    ]) {
      expect(tally.frames.get(outcome) ?? 0, tally.summary()).toBeGreaterThan(100);
    }
    for (const outcome of ['ok', 'BRAID_ERR_WIRE_TRUNCATED', 'BRAID_ERR_WIRE_VERSION']) {
      expect(tally.header.get(outcome) ?? 0, tally.summary()).toBeGreaterThan(100);
    }
  });
});
