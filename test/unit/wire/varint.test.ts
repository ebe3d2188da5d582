import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readVarint, varintLength, writeVarint, VARINT_MAX } from '../../../core/wire/varint.js';
import { hex, thrownCode, varintArb } from './arbitraries.js';

describe('varint', () => {
  it('encodes the RFC 9000 Appendix A.1 examples and decodes them back', () => {
    // RFC 9000 §A.1 sample values (the 8-byte one is above 2^53-1, so a smaller one here).
    const cases: [number, string][] = [
      [37, '25'],
      [15293, '7bbd'],
      [494878333, '9d7f3e7d'],
      [2 ** 53 - 1, 'c01fffffffffffff'],
    ];
    for (const [value, encoded] of cases) {
      const buf = Buffer.alloc(8);
      const end = writeVarint(buf, 0, value);
      expect(buf.subarray(0, end).toString('hex')).toBe(encoded);
      expect(readVarint(hex(encoded), 0)).toEqual({ value, next: encoded.length / 2 });
    }
  });

  it('reads a non-minimal encoding (RFC 9000 allows it; decoders reject it)', () => {
    expect(readVarint(hex('4025'), 0)).toEqual({ value: 37, next: 2 });
  });

  it('uses the shortest length at every boundary', () => {
    const expected: [number, number][] = [
      [0, 1],
      [63, 1],
      [64, 2],
      [16383, 2],
      [16384, 4],
      [2 ** 30 - 1, 4],
      [2 ** 30, 8],
      [VARINT_MAX, 8],
    ];
    for (const [value, length] of expected) {
      expect(varintLength(value)).toBe(length);
      expect(writeVarint(Buffer.alloc(8), 0, value)).toBe(length);
    }
  });

  it('round-trips any value in 0..2^53-1 at any position', () => {
    fc.assert(
      fc.property(varintArb, fc.nat({ max: 5 }), (value, pos) => {
        const buf = Buffer.alloc(pos + 8);
        const end = writeVarint(buf, pos, value);
        expect(end - pos).toBe(varintLength(value));
        expect(readVarint(buf, pos)).toEqual({ value, next: end });
        // A Uint8Array that is not a Buffer reads the same.
        expect(readVarint(new Uint8Array(buf), pos)).toEqual({ value, next: end });
      }),
    );
  });

  it('returns undefined when the buffer ends inside a varint', () => {
    expect(readVarint(new Uint8Array(0), 0)).toBeUndefined();
    expect(readVarint(hex('7b'), 0)).toBeUndefined();
    expect(readVarint(hex('9d7f3e'), 0)).toBeUndefined();
    expect(readVarint(hex('c0000000000000'), 0)).toBeUndefined();
    expect(readVarint(hex('25'), 1)).toBeUndefined();
  });

  it('returns values above 2^53-1 as larger than VARINT_MAX so decoders can reject them', () => {
    const read = readVarint(hex('c020000000000000'), 0);
    expect(read!.value).toBeGreaterThan(VARINT_MAX);
    expect(readVarint(hex('ffffffffffffffff'), 0)!.value).toBeGreaterThan(VARINT_MAX);
  });

  it('refuses negative, fractional, unsafe and non-number values', () => {
    for (const bad of [-1, 0.5, 2 ** 53, Number.NaN, Infinity]) {
      expect(thrownCode(() => writeVarint(Buffer.alloc(8), 0, bad))).toBe(
        'BRAID_ERR_WIRE_BAD_VALUE',
      );
    }
  });

  it('refuses to write past the end of the buffer', () => {
    expect(thrownCode(() => writeVarint(Buffer.alloc(1), 0, 64))).toBe('BRAID_ERR_WIRE_TOO_LARGE');
  });
});
