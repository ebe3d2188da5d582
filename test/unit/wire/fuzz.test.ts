/**
 * Decoder fuzzing under a time limit, as undici does with fast-check. `npm test` runs
 * BRAID_FUZZ_RUNS=20000 by default with a fresh seed each time; `npm run fuzz` runs a
 * million. A failure prints the seed and path to replay it.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeFrames } from '../../../core/wire/decode.js';
import { plainAll } from './arbitraries.js';
import { checkDecoders, fuzzInputArb, OutcomeTally } from './fuzz-target.js';
import { referenceDecode } from './reference-codec.js';

const RUNS = Number(process.env['BRAID_FUZZ_RUNS'] ?? 20_000);
// Roughly 30 µs per input on a shared core; the limit stops a slow machine early (which
// is reported, not failed) instead of hitting the test timeout.
const TIME_LIMIT_MS = Math.max(30_000, RUNS * 0.2);

function run(property: fc.IProperty<[Uint8Array]>, runs: number): fc.RunDetails<[Uint8Array]> {
  const details = fc.check(property, {
    numRuns: runs,
    interruptAfterTimeLimit: TIME_LIMIT_MS,
    markInterruptAsFailure: false,
  });
  if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? 'property failed');
  return details;
}

describe(`wire decoder fuzzing (${RUNS} runs)`, () => {
  it(
    'decoders never throw, fail only with BRAID_ERR_WIRE_* and accept only canonical bytes',
    () => {
      expect(Number.isSafeInteger(RUNS) && RUNS > 0, 'BRAID_FUZZ_RUNS').toBe(true);
      const tally = new OutcomeTally();
      const details = run(
        fc.property(fuzzInputArb, (input) => {
          tally.add(checkDecoders(input));
        }),
        RUNS,
      );
      console.log(
        `seed ${details.seed}${details.interrupted ? ', interrupted by the time limit' : ''}: ${tally.summary()}`,
      );
      expect(tally.frames.get('ok') ?? 0).toBeGreaterThan(0);
    },
    TIME_LIMIT_MS + 60_000,
  );

  it(
    'the decoder and the reference decoder accept the same inputs and agree on the frames',
    () => {
      run(
        fc.property(fuzzInputArb, (input) => {
          const ours = decodeFrames(input);
          const reference = referenceDecode(input);
          if (ours.ok !== reference.ok) {
            throw new Error(
              `decoder ${ours.ok ? 'accepted' : `rejected (${ours.error.message})`}, reference ${
                reference.ok ? 'accepted' : `rejected (${reference.reason})`
              }`,
            );
          }
          if (ours.ok && reference.ok) {
            expect(plainAll(ours.value)).toEqual(plainAll(reference.frames));
          }
        }),
        // The reference decoder is slow (BigInt varints); a fifth of the runs is plenty.
        Math.max(1, Math.floor(RUNS / 5)),
      );
    },
    TIME_LIMIT_MS + 60_000,
  );
});
