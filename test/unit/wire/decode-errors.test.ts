import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { ErrorCode } from '../../../core/util/errors.js';
import { decodeFrame, decodeFrames } from '../../../core/wire/decode.js';
import { encodeFrames } from '../../../core/wire/encode.js';
import { framesArb, hex, plainAll } from './arbitraries.js';

function codeOf(bytes: Uint8Array): ErrorCode | 'ok' {
  const result = decodeFrames(bytes);
  return result.ok ? 'ok' : result.error.code;
}

describe('frame decoder rejects malformed input with a typed error', () => {
  const cases: [string, string, ErrorCode][] = [
    // [what, hex bytes, expected code]
    ['an empty payload', '', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['an unassigned frame type 0x0c', '0c', 'BRAID_ERR_WIRE_UNKNOWN_FRAME'],
    ['an unassigned frame type 0x18', '18 00', 'BRAID_ERR_WIRE_UNKNOWN_FRAME'],
    ['a POLICY cut before its presence byte', '17 01 01 01 00', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['a stamped DATAGRAM missing its data', '15 01 02 03', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['an OPEN_POLICY without its presence byte', '16 01 00 00 00 00', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['OPEN_POLICY presence with reserved bits', '16 01 00 00 00 00 20', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['an OPEN_POLICY slider above 1', '16 01 00 00 00 00 01 800f4241', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['an OPEN_POLICY tolerance of 0', '16 01 00 00 00 00 04 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['frame type 0xff', 'ff', 'BRAID_ERR_WIRE_UNKNOWN_FRAME'],
    ['a frame cut inside a varint', '07 7b', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['a frame missing its last field', '07 01', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['a non-minimal 2-byte varint', '07 4001 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['a non-minimal 4-byte varint', '07 80003fff 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['a non-minimal 8-byte varint', '07 c00000003fffffff 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['a varint of 2^53', '07 c020000000000000 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['a varint of 2^62-1', '07 ffffffffffffffff 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['data longer than the payload', '02 01 02 05 616263', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['data length of 2^53-1', '02 01 02 c01fffffffffffff', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['STREAM flags with reserved bits', '01 02 01 00 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['FEEDBACK presence with reserved bits', '0a 01 10', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['non-zero PADDING', '00 02 0001', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['PADDING longer than the payload', '00 05 0000', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['an unknown semantics index', '04 01 04 00 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['an unknown objective index', '04 01 00 01 04 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['an unknown path state index', '09 01 04 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    [
      'an unknown transport index',
      '12 0102030405060708 01 02' + 'ab'.repeat(32),
      'BRAID_ERR_WIRE_BAD_VALUE',
    ],
    ['a string of 256 bytes', '14 01 4100' + '61'.repeat(256), 'BRAID_ERR_WIRE_TOO_LARGE'],
    ['a string longer than the payload', '14 01 05 6162', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['invalid UTF-8 (lone continuation byte)', '14 01 01 80', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['overlong UTF-8 for "/"', '14 01 02 c0af', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['UTF-8 of a surrogate', '14 01 03 eda080', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['a list of 65 items', '04 01 00 4041 ' + '00'.repeat(65) + '00', 'BRAID_ERR_WIRE_TOO_LARGE'],
    ['a list count above the bytes left', '04 01 00 3f 00 00', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['an ACK range count of 65', '03 01 0a 00 4040 00', 'BRAID_ERR_WIRE_TOO_LARGE'],
    ['an ACK first range below 0', '03 01 0a 00 00 0b', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['an ACK gap below 0', '03 01 0a 00 01 02 07 00', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['an ACK range below 0', '03 01 0a 00 01 02 04 03', 'BRAID_ERR_WIRE_BAD_VALUE'],
    ['an ACK with more ranges than bytes', '03 01 0a 00 3f 00', 'BRAID_ERR_WIRE_TRUNCATED'],
    [
      'a JOIN with a short MAC',
      '12 0102030405060708 01 00' + 'ab'.repeat(31),
      'BRAID_ERR_WIRE_TRUNCATED',
    ],
    ['a HELLO_ACK with a short association id', '11 01 01020304', 'BRAID_ERR_WIRE_TRUNCATED'],
    ['a valid frame followed by garbage', '07 01 02 ff', 'BRAID_ERR_WIRE_UNKNOWN_FRAME'],
    ['a valid frame followed by a cut frame', '07 01 02 07 01', 'BRAID_ERR_WIRE_TRUNCATED'],
  ];

  it.each(cases)('%s', (_what, bytes, code) => {
    expect(codeOf(hex(bytes))).toBe(code);
    // A Uint8Array that is not a Buffer behaves the same.
    expect(codeOf(new Uint8Array(hex(bytes)))).toBe(code);
  });

  it('accepts the boundary values next to the rejected ones', () => {
    expect(codeOf(hex('03 01 0a 00 00 0a'))).toBe('ok'); // first range down to 0
    expect(codeOf(hex('03 01 0a 00 01 02 06 00'))).toBe('ok'); // gap to exactly 0
    expect(codeOf(hex('03 01 0a 00 01 02 04 02'))).toBe('ok'); // range down to exactly 0
    expect(codeOf(hex('14 01 40ff' + '61'.repeat(255)))).toBe('ok'); // 255-byte string
    expect(codeOf(hex('04 01 00 4040 ' + '00'.repeat(64) + '00 00'))).toBe('ok'); // 64 items
    expect(codeOf(hex('07 3f 4040'))).toBe('ok'); // 63 in one byte, 64 in two
    expect(codeOf(hex('07 c01fffffffffffff 80004000'))).toBe('ok'); // 2^53-1, 16384
    expect(codeOf(hex('00 00 00 00'))).toBe('ok'); // two empty PADDING frames
    expect(codeOf(hex('14 01 03 efbbbf'))).toBe('ok'); // a lone BOM is valid UTF-8
  });

  it('keeps a leading byte order mark in strings so they re-encode to the same bytes', () => {
    const result = decodeFrames(hex('14 01 04 efbbbf61'));
    expect(result.ok && result.value).toEqual([{ type: 'error', code: 1, reason: '\uFEFFa' }]);
  });

  it('reports the error of any frame as the failure of the whole payload', () => {
    const good = encodeFrames([{ type: 'probe', probeId: 1, sentAtMicros: 2 }]);
    const payload = Buffer.concat([good, good, hex('0c')]);
    expect(codeOf(payload)).toBe('BRAID_ERR_WIRE_UNKNOWN_FRAME');
  });

  it('decodes every strict prefix of a valid payload to an error, never a frame list', () => {
    fc.assert(
      fc.property(framesArb, (frames) => {
        const bytes = encodeFrames(frames);
        const last = encodeFrames(frames.slice(-1)).length;
        // Cutting inside the last frame leaves it truncated; cutting at a frame boundary
        // is a shorter, valid payload.
        for (let cut = bytes.length - last + 1; cut < bytes.length; cut++) {
          expect(codeOf(bytes.subarray(0, cut))).toBe('BRAID_ERR_WIRE_TRUNCATED');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('walks a payload frame by frame with decodeFrame positions', () => {
    fc.assert(
      fc.property(framesArb, (frames) => {
        const bytes = new Uint8Array(encodeFrames(frames));
        const decoded = [];
        let pos = 0;
        while (pos < bytes.length) {
          const result = decodeFrame(bytes, pos);
          if (!result.ok) throw result.error;
          decoded.push(result.value.frame);
          pos = result.value.next;
        }
        expect(plainAll(decoded)).toEqual(plainAll(frames));
      }),
      { numRuns: 300 },
    );
  });

  it('returns a typed error for a position outside the buffer', () => {
    for (const pos of [-1, 4, 0.5, Number.NaN]) {
      const result = decodeFrame(hex('07 01 02'), pos);
      expect(result.ok ? 'ok' : result.error.code).toBe('BRAID_ERR_WIRE_TRUNCATED');
    }
  });
});
