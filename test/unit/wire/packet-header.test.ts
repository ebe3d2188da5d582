import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ASSOCIATION_ID_LENGTH, WIRE_VERSION } from '../../../core/wire/frame.js';
import { decodeHeader, headerLength, writeHeader } from '../../../core/wire/packet-header.js';
import { hex, thrownCode, VARINT_EDGES, varintArb } from './arbitraries.js';

const id = hex('0102030405060708');

function codeOf(bytes: Uint8Array): string {
  const result = decodeHeader(bytes);
  return result.ok ? 'ok' : result.error.code;
}

describe('packet header', () => {
  it('lays out version, association id, pathId and packetNumber', () => {
    const buf = Buffer.alloc(32);
    const end = writeHeader(buf, 0, id, 3, 16384);
    expect(buf.subarray(0, end).toString('hex')).toBe(
      '01' + '0102030405060708' + '03' + '80004000',
    );
    expect(headerLength(3, 16384)).toBe(end);
  });

  it('decodes what it writes, for any numbers and a payload after it', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: ASSOCIATION_ID_LENGTH, maxLength: ASSOCIATION_ID_LENGTH }),
        fc.constantFrom(...VARINT_EDGES).chain(() => varintArb),
        varintArb,
        fc.uint8Array({ maxLength: 20 }),
        (associationId, pathId, packetNumber, payload) => {
          const length = headerLength(pathId, packetNumber);
          const buf = Buffer.alloc(length + payload.length);
          expect(writeHeader(buf, 0, associationId, pathId, packetNumber)).toBe(length);
          buf.set(payload, length);
          for (const input of [buf, new Uint8Array(buf)]) {
            const result = decodeHeader(input);
            expect(result.ok).toBe(true);
            if (!result.ok) return;
            expect(result.value.length).toBe(length);
            const { header } = result.value;
            expect(header.version).toBe(WIRE_VERSION);
            expect(Buffer.from(header.associationId).equals(associationId)).toBe(true);
            expect([header.pathId, header.packetNumber]).toEqual([pathId, packetNumber]);
          }
        },
      ),
    );
  });

  it('returns the association id as a view of the packet', () => {
    const buf = Buffer.alloc(11);
    writeHeader(buf, 0, id, 0, 0);
    const result = decodeHeader(buf);
    expect(result.ok && result.value.header.associationId.buffer).toBe(buf.buffer);
  });

  it('rejects another version with BRAID_ERR_WIRE_VERSION', () => {
    expect(codeOf(hex('02 0102030405060708 00 00'))).toBe('BRAID_ERR_WIRE_VERSION');
    expect(codeOf(hex('00'))).toBe('BRAID_ERR_WIRE_VERSION');
  });

  it('rejects truncated headers at every length', () => {
    const full = hex('01 0102030405060708 4001 80004000');
    expect(codeOf(hex('01 0102030405060708 40 00'))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
    for (let cut = 0; cut < full.length; cut++) {
      expect(codeOf(full.subarray(0, cut))).not.toBe('ok');
    }
    expect(codeOf(hex(''))).toBe('BRAID_ERR_WIRE_TRUNCATED');
    expect(codeOf(hex('01 01020304'))).toBe('BRAID_ERR_WIRE_TRUNCATED');
    expect(codeOf(hex('01 0102030405060708 05'))).toBe('BRAID_ERR_WIRE_TRUNCATED');
    expect(codeOf(hex('01 0102030405060708 05 9d7f3e'))).toBe('BRAID_ERR_WIRE_TRUNCATED');
  });

  it('rejects non-minimal and oversized varints with BRAID_ERR_WIRE_BAD_VALUE', () => {
    expect(codeOf(hex('01 0102030405060708 4005 00'))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
    expect(codeOf(hex('01 0102030405060708 05 c020000000000000'))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
  });

  it('refuses to write a bad association id, bad numbers, or past the buffer', () => {
    const buf = Buffer.alloc(40);
    expect(thrownCode(() => writeHeader(buf, 0, id.subarray(1), 0, 0))).toBe(
      'BRAID_ERR_WIRE_BAD_VALUE',
    );
    expect(thrownCode(() => writeHeader(buf, 0, id, -1, 0))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
    expect(thrownCode(() => writeHeader(buf, 0, id, 0, 2 ** 53))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
    expect(thrownCode(() => writeHeader(Buffer.alloc(10), 0, id, 0, 0))).toBe(
      'BRAID_ERR_WIRE_TOO_LARGE',
    );
  });
});
