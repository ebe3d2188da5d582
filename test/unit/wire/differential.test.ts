import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeFrames } from '../../../core/wire/decode.js';
import { encodeFrames } from '../../../core/wire/encode.js';
import { FRAME_TYPES, frameArbOf, framesArb, plainAll } from './arbitraries.js';
import { mutatedPayloadArb } from './fuzz-target.js';
import { referenceDecode, referenceEncode } from './reference-codec.js';

describe('codec against the reference codec', () => {
  it.each(FRAME_TYPES)(
    'encodes generated %s frames to the same bytes and decodes them alike',
    (type) => {
      fc.assert(
        fc.property(fc.array(frameArbOf(type), { minLength: 1, maxLength: 3 }), (frames) => {
          const ours = encodeFrames(frames);
          const theirs = Buffer.from(referenceEncode(frames));
          expect(ours.toString('hex')).toBe(theirs.toString('hex'));
          const decoded = decodeFrames(ours);
          const reference = referenceDecode(theirs);
          expect(decoded.ok && plainAll(decoded.value)).toEqual(
            reference.ok && plainAll(reference.frames),
          );
          expect(decoded.ok && plainAll(decoded.value)).toEqual(plainAll(frames));
        }),
        { numRuns: 200 },
      );
    },
  );

  it('encodes mixed payloads to the same bytes', () => {
    fc.assert(
      fc.property(framesArb, (frames) => {
        expect(encodeFrames(frames).equals(Buffer.from(referenceEncode(frames)))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('accepts and rejects the same mutated payloads, with equal frames when accepted', () => {
    fc.assert(
      fc.property(mutatedPayloadArb, (bytes) => {
        const ours = decodeFrames(bytes);
        const reference = referenceDecode(bytes);
        expect(ours.ok).toBe(reference.ok);
        if (ours.ok && reference.ok) {
          expect(plainAll(ours.value)).toEqual(plainAll(reference.frames));
        }
      }),
      { numRuns: 3000 },
    );
  });
});
