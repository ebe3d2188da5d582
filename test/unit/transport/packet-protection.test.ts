import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  PacketProtection,
  TAG_LENGTH,
  type AeadAlgorithm,
} from '../../../core/transport/packet-protection.js';
import { BraidError } from '../../../core/util/errors.js';

function keyPair(): { a: PacketProtection; b: PacketProtection; alg: AeadAlgorithm }[] {
  return (['aes-256-gcm', 'chacha20-poly1305'] as AeadAlgorithm[]).map((alg) => {
    const k1 = { key: randomBytes(32), iv: randomBytes(12) };
    const k2 = { key: randomBytes(32), iv: randomBytes(12) };
    return { a: new PacketProtection(k1, k2, alg), b: new PacketProtection(k2, k1, alg), alg };
  });
}

function packet(header: Buffer, payload: Buffer): Buffer {
  return Buffer.concat([header, payload]);
}

describe.each(keyPair())('PacketProtection ($alg)', ({ a, b }) => {
  const header = Buffer.from('01aabbccddeeff0011020a', 'hex');
  const payload = randomBytes(1200);

  it('opens what the peer sealed, with the header left in clear', () => {
    const sealed = a.seal(packet(header, payload), header.length, payload.length, 42);
    expect(sealed.length).toBe(header.length + payload.length + TAG_LENGTH);
    expect(sealed.subarray(0, header.length)).toEqual(header);
    expect(sealed.subarray(header.length, header.length + payload.length).equals(payload)).toBe(
      false,
    );
    const opened = b.open(sealed, header.length, 42);
    expect(opened).toBeInstanceOf(Buffer);
    expect((opened as Buffer).equals(payload)).toBe(true);
  });

  it('refuses a packet with any single bit flipped, in header, body or tag', () => {
    const sealed = a.seal(packet(header, payload), header.length, payload.length, 7);
    for (const index of [0, 5, header.length, header.length + 600, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[index]! ^= 0x10;
      const result = b.open(bad, header.length, 7);
      expect(result).toBeInstanceOf(BraidError);
      expect((result as BraidError).code).toBe('BRAID_ERR_DECRYPT');
    }
  });

  it('refuses a packet opened under another packet number (the nonce differs) or truncated', () => {
    const sealed = a.seal(packet(header, payload), header.length, payload.length, 1);
    expect((b.open(sealed, header.length, 2) as BraidError).code).toBe('BRAID_ERR_DECRYPT');
    expect(
      (b.open(sealed.subarray(0, header.length + 3), header.length, 1) as BraidError).code,
    ).toBe('BRAID_ERR_DECRYPT');
  });

  it('uses distinct ciphertexts for the same payload under different packet numbers', () => {
    const s1 = a.seal(packet(header, payload), header.length, payload.length, 2 ** 40);
    const s2 = a.seal(packet(header, payload), header.length, payload.length, 2 ** 40 + 1);
    expect(s1.subarray(header.length).equals(s2.subarray(header.length))).toBe(false);
    expect((b.open(s1, header.length, 2 ** 40) as Buffer).equals(payload)).toBe(true);
  });

  it('refuses a packet sealed with its own send key (a reflected packet)', () => {
    const sealed = a.seal(packet(header, payload), header.length, payload.length, 3);
    expect(a.open(sealed, header.length, 3)).toBeInstanceOf(BraidError);
  });
});
