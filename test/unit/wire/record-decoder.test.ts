import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BraidError } from '../../../core/util/errors.js';
import {
  DEFAULT_MAX_RECORD,
  RECORD_HEADER_LENGTH,
  RecordDecoder,
  writeRecordHeader,
} from '../../../core/wire/record-decoder.js';
import { hex, thrownCode } from './arbitraries.js';

function frame(record: Uint8Array): Buffer {
  const out = Buffer.alloc(RECORD_HEADER_LENGTH + record.length);
  writeRecordHeader(out, 0, record.length);
  out.set(record, RECORD_HEADER_LENGTH);
  return out;
}

/** Pulls every complete record; fails the test on an error. */
function drain(decoder: RecordDecoder): Buffer[] {
  const out: Buffer[] = [];
  for (;;) {
    const next = decoder.next();
    if (next === undefined) return out;
    if (next instanceof BraidError) throw next;
    out.push(next);
  }
}

/** Splits `bytes` at the given cut points (any order, duplicates allowed). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, p));
    start = p;
  }
  return chunks;
}

describe('record framing', () => {
  it('writes a 4-byte big-endian length', () => {
    const buf = Buffer.alloc(6);
    expect(writeRecordHeader(buf, 1, 0x01020304)).toBe(5);
    expect(buf.toString('hex')).toBe('000102030400');
    expect(thrownCode(() => writeRecordHeader(buf, 0, -1))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
    expect(thrownCode(() => writeRecordHeader(buf, 0, 2 ** 32))).toBe('BRAID_ERR_WIRE_BAD_VALUE');
    expect(thrownCode(() => writeRecordHeader(buf, 3, 1))).toBe('BRAID_ERR_WIRE_TOO_LARGE');
  });
});

describe('RecordDecoder', () => {
  it('reassembles records fed as hex bytes split across pushes', () => {
    const decoder = new RecordDecoder();
    decoder.push(hex('00'));
    decoder.push(hex('00 00'));
    expect(decoder.next()).toBeUndefined();
    decoder.push(hex('03 61'));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.bufferedBytes).toBe(1);
    decoder.push(hex('62 63 00 00 00 00 00 00'));
    expect(decoder.next()?.toString()).toBe('abc');
    // A zero-length record, then the start of another.
    expect(decoder.next()).toEqual(Buffer.alloc(0));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.bufferedBytes).toBe(2);
    decoder.push(hex('00 01 7a'));
    expect(decoder.next()?.toString()).toBe('z');
    expect(decoder.next()).toBeUndefined();
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('returns a record lying within one chunk as a view of that chunk', () => {
    const chunk = Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('two'))]);
    const decoder = new RecordDecoder();
    decoder.push(chunk);
    const [first, second] = drain(decoder);
    expect(first?.buffer).toBe(chunk.buffer);
    expect(second?.toString()).toBe('two');
  });

  it('decodes a random sequence of records split at random boundaries to the same records', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.boolean(),
        (records, cuts, pullEarly) => {
          const stream = Buffer.concat(records.map(frame));
          const decoder = new RecordDecoder(300);
          const out: Buffer[] = [];
          for (const chunk of split(stream, cuts)) {
            decoder.push(chunk);
            // Pulling after every push and pulling once at the end must agree.
            if (pullEarly) out.push(...drain(decoder));
          }
          out.push(...drain(decoder));
          expect(out.map((r) => r.toString('hex'))).toEqual(
            records.map((r) => Buffer.from(r).toString('hex')),
          );
          expect(decoder.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('accepts plain Uint8Array chunks', () => {
    const decoder = new RecordDecoder();
    decoder.push(new Uint8Array(hex('00 00 00 02 68')));
    decoder.push(new Uint8Array(hex('69')));
    expect(decoder.next()?.toString()).toBe('hi');
  });

  it('accepts a record of exactly the cap', () => {
    const decoder = new RecordDecoder(16);
    decoder.push(frame(new Uint8Array(16)));
    expect(drain(decoder)).toHaveLength(1);
  });

  it('rejects a declared length over the cap as soon as the header is complete, and stays failed', () => {
    const decoder = new RecordDecoder(16);
    decoder.push(frame(Buffer.from('ok')));
    decoder.push(hex('00 00'));
    decoder.push(hex('00'));
    expect(decoder.next()?.toString()).toBe('ok');
    expect(decoder.next()).toBeUndefined();
    decoder.push(hex('11'));
    const error = decoder.next();
    expect(error instanceof BraidError && error.code).toBe('BRAID_ERR_WIRE_TOO_LARGE');
    decoder.push(frame(Buffer.from('later')));
    const again = decoder.next();
    expect(again instanceof BraidError && again.code).toBe('BRAID_ERR_WIRE_TOO_LARGE');
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('caps records at DEFAULT_MAX_RECORD by default', () => {
    const decoder = new RecordDecoder();
    const header = Buffer.alloc(4);
    writeRecordHeader(header, 0, DEFAULT_MAX_RECORD + 1);
    decoder.push(header);
    const error = decoder.next();
    expect(error instanceof BraidError && error.code).toBe('BRAID_ERR_WIRE_TOO_LARGE');
    expect(hex('ffffffff').readUInt32BE(0)).toBeGreaterThan(DEFAULT_MAX_RECORD);
  });

  it('reassembles 64 KiB records pushed one byte at a time in linear time', () => {
    const records = [Buffer.alloc(65536, 1), Buffer.alloc(65536, 2)];
    const stream = Buffer.concat(records.map(frame));
    const decoder = new RecordDecoder();
    const out: Buffer[] = [];
    const started = process.hrtime.bigint();
    for (let i = 0; i < stream.length; i++) {
      decoder.push(stream.subarray(i, i + 1));
      const next = decoder.next();
      if (next instanceof BraidError) throw next;
      if (next !== undefined) out.push(next);
    }
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    expect(out.map((r) => r.equals(records[out.indexOf(r)]!))).toEqual([true, true]);
    // Quadratic copying or array shifting of 131,080 one-byte chunks takes seconds.
    expect(elapsedMs).toBeLessThan(1000);
  });
});
