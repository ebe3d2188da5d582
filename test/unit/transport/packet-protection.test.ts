import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AEAD_ALGORITHMS,
  PacketProtection,
  TAG_LENGTH,
  type AeadAlgorithm,
  type PathKey,
} from '../../../core/transport/packet-protection.js';
import { BraidError } from '../../../core/util/errors.js';

const newKey = (): PathKey => ({ key: randomBytes(32), iv: randomBytes(12) });

type Backend = 'openssl' | 'node:crypto';
const BACKENDS: readonly Backend[] = ['openssl', 'node:crypto'];
/** Every algorithm with every pairing of the sealer's and the opener's backend. */
const CASES = AEAD_ALGORITHMS.flatMap((alg) =>
  BACKENDS.flatMap((sealer) => BACKENDS.map((opener) => [alg, sealer, opener] as const)),
);

/**
 * Both ends of one path: a's send key is b's receive key and the other way round; a
 * seals with `sealer`'s backend, b opens with `opener`'s (native-aead.ts or
 * node:crypto), so every test also checks that the two produce the same packets.
 */
function ends(
  alg: AeadAlgorithm,
  sealer: Backend = 'openssl',
  opener: Backend = 'openssl',
): { a: PacketProtection; b: PacketProtection } {
  const k1 = newKey();
  const k2 = newKey();
  return {
    a: new PacketProtection(k1, k2, alg, { native: sealer === 'openssl' }),
    b: new PacketProtection(k2, k1, alg, { native: opener === 'openssl' }),
  };
}

const header = Buffer.from('01aabbccddeeff0011020a', 'hex');

function plain(payload: Buffer): Buffer {
  return Buffer.concat([header, payload]);
}

function expectDecryptError(result: Buffer | BraidError): void {
  expect(result).toBeInstanceOf(BraidError);
  expect((result as BraidError).code).toBe('BRAID_ERR_DECRYPT');
}

/** The nonce of RFC 9001 §5.3, computed independently with BigInt. */
function referenceNonce(iv: Buffer, pn: number): Buffer {
  const nonce = Buffer.from(iv);
  const low = nonce.readBigUInt64BE(4) ^ BigInt(pn);
  nonce.writeBigUInt64BE(low, 4);
  return nonce;
}

describe.each(CASES)('PacketProtection (%s, sealed by %s, opened by %s)', (alg, sealer, opener) => {
  const seal = { native: sealer === 'openssl' };
  const open = { native: opener === 'openssl' };
  it('uses the backend asked for', () => {
    const { a, b } = ends(alg, sealer, opener);
    expect(a.native).toBe(sealer === 'openssl');
    expect(b.native).toBe(opener === 'openssl');
  });

  it.each([0, 1, 1200, 16384, 65536])(
    'opens a %i-byte payload the peer sealed, with the header in clear and a 16-byte tag',
    (size) => {
      const { a, b } = ends(alg, sealer, opener);
      const payload = randomBytes(size);
      const input = plain(payload);
      const copy = Buffer.from(input);
      const sealed = a.seal(input, header.length, size, 42);
      expect(input.equals(copy)).toBe(true);
      expect(sealed.length).toBe(header.length + size + TAG_LENGTH);
      expect(sealed.subarray(0, header.length).equals(header)).toBe(true);
      if (size > 0) {
        expect(sealed.subarray(header.length, header.length + size).equals(payload)).toBe(false);
      }
      const opened = b.open(sealed, header.length, 42);
      expect(opened).toBeInstanceOf(Buffer);
      expect((opened as Buffer).equals(payload)).toBe(true);
    },
  );

  it('seals only the given range of a larger scratch buffer', () => {
    const { a, b } = ends(alg, sealer, opener);
    const payload = randomBytes(300);
    const scratch = Buffer.concat([plain(payload), randomBytes(100)]);
    const sealed = a.seal(scratch, header.length, payload.length, 5);
    expect(sealed.length).toBe(header.length + payload.length + TAG_LENGTH);
    expect((b.open(sealed, header.length, 5) as Buffer).equals(payload)).toBe(true);
  });

  it('refuses the packet when any single byte of header, ciphertext or tag is changed', () => {
    const { a, b } = ends(alg, sealer, opener);
    const payload = randomBytes(64);
    const sealed = a.seal(plain(payload), header.length, payload.length, 7);
    for (let index = 0; index < sealed.length; index++) {
      const bad = Buffer.from(sealed);
      bad[index]! ^= 1 << (index % 8);
      expectDecryptError(b.open(bad, header.length, 7));
    }
    expect((b.open(sealed, header.length, 7) as Buffer).equals(payload)).toBe(true);
  });

  it('refuses a packet opened with a wrong key or a wrong IV', () => {
    const send = newKey();
    const a = new PacketProtection(send, newKey(), alg, seal);
    const wrongKey = new PacketProtection(
      newKey(),
      { key: randomBytes(32), iv: send.iv },
      alg,
      open,
    );
    const wrongIv = new PacketProtection(
      newKey(),
      { key: send.key, iv: randomBytes(12) },
      alg,
      open,
    );
    const right = new PacketProtection(newKey(), send, alg, open);
    const sealed = a.seal(plain(randomBytes(100)), header.length, 100, 9);
    expectDecryptError(wrongKey.open(sealed, header.length, 9));
    expectDecryptError(wrongIv.open(sealed, header.length, 9));
    expect(right.open(sealed, header.length, 9)).toBeInstanceOf(Buffer);
  });

  it('refuses a packet sealed with its own send key (a reflected packet)', () => {
    const { a } = ends(alg, sealer, opener);
    const sealed = a.seal(plain(randomBytes(50)), header.length, 50, 3);
    expectDecryptError(a.open(sealed, header.length, 3));
  });

  it('derives the nonce as IV xor packet number (RFC 9001 §5.3) over the whole 2^53 range', () => {
    const key = newKey();
    const p = new PacketProtection(key, newKey(), alg, seal);
    const payload = randomBytes(40);
    for (const pn of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
      const cipher = createCipheriv(alg as 'aes-256-gcm', key.key, referenceNonce(key.iv, pn));
      cipher.setAAD(header);
      const expected = Buffer.concat([
        header,
        cipher.update(payload),
        cipher.final(),
        cipher.getAuthTag(),
      ]);
      expect(p.seal(plain(payload), header.length, payload.length, pn).equals(expected)).toBe(true);
    }
  });

  it('gives each packet number its own nonce: same payload, different bytes, and only its own number opens it', () => {
    const { a, b } = ends(alg, sealer, opener);
    const payload = randomBytes(200);
    const pns = [0, 1, 2, 2 ** 32, 2 ** 32 + 1, 2 ** 52, Number.MAX_SAFE_INTEGER];
    const sealed = pns.map((pn) => a.seal(plain(payload), header.length, payload.length, pn));
    const bodies = new Set(sealed.map((s) => s.subarray(header.length).toString('hex')));
    expect(bodies.size).toBe(pns.length);
    pns.forEach((pn, i) => {
      expect((b.open(sealed[i]!, header.length, pn) as Buffer).equals(payload)).toBe(true);
      expectDecryptError(b.open(sealed[i]!, header.length, pns[(i + 1) % pns.length]!));
    });
  });

  it('refuses packets shorter than header and tag, and packet numbers outside 0..2^53-1', () => {
    const { a, b } = ends(alg, sealer, opener);
    const sealed = a.seal(plain(randomBytes(10)), header.length, 10, 1);
    expectDecryptError(
      b.open(sealed.subarray(0, header.length + TAG_LENGTH - 1), header.length, 1),
    );
    expectDecryptError(b.open(Buffer.alloc(0), 0, 1));
    expectDecryptError(b.open(sealed, sealed.length, 1));
    expectDecryptError(b.open(sealed, -1, 1));
    for (const pn of [-1, 1.5, 2 ** 53, Number.NaN])
      expectDecryptError(b.open(sealed, header.length, pn));
    // A header-only packet still carries and checks a tag.
    const empty = a.seal(header, header.length, 0, 2);
    expect((b.open(empty, header.length, 2) as Buffer).length).toBe(0);
    expectDecryptError(b.open(empty.subarray(0, header.length), header.length, 2));
  });

  it('throws BRAID_ERR_USAGE when asked to seal lengths outside the buffer or a bad packet number', () => {
    const { a } = ends(alg, sealer, opener);
    const input = plain(randomBytes(10));
    const cases: Array<[number, number, number]> = [
      [header.length, 11, 0],
      [-1, 5, 0],
      [header.length, -1, 0],
      [header.length, 10, -1],
      [header.length, 10, 2 ** 53],
    ];
    for (const [hl, pl, pn] of cases) {
      expect(() => a.seal(input, hl, pl, pn)).toThrowError(
        expect.objectContaining({ code: 'BRAID_ERR_USAGE' }) as Error,
      );
    }
  });

  it('produces with sealParts exactly the bytes of seal, in three pieces, with the header copied', () => {
    const { a, b } = ends(alg, sealer, opener);
    const payload = randomBytes(5000);
    const whole = plain(payload);
    const parts = a.sealParts(whole, header.length, payload.length, 99);
    expect(parts.map((p) => p.length)).toEqual([header.length, payload.length, TAG_LENGTH]);
    expect(Buffer.concat(parts).equals(a.seal(whole, header.length, payload.length, 99))).toBe(
      true,
    );
    expect((b.open(Buffer.concat(parts), header.length, 99) as Buffer).equals(payload)).toBe(true);
    // Reusing the scratch buffer afterwards does not change a queued header.
    whole.fill(0, 0, header.length);
    expect(parts[0].equals(header)).toBe(true);
  });
});

describe('PacketProtection keys and algorithms', () => {
  it('does not open with one algorithm what the other sealed under the same keys', () => {
    const k1 = newKey();
    const k2 = newKey();
    const gcm = new PacketProtection(k1, k2, 'aes-256-gcm');
    const chacha = new PacketProtection(k2, k1, 'chacha20-poly1305');
    const sealed = gcm.seal(plain(randomBytes(64)), header.length, 64, 1);
    expectDecryptError(chacha.open(sealed, header.length, 1));
  });

  it('rejects keys that are not 32 bytes and IVs that are not 12 bytes with BRAID_ERR_USAGE', () => {
    const good = newKey();
    for (const bad of [
      { key: randomBytes(16), iv: randomBytes(12) },
      { key: randomBytes(32), iv: randomBytes(8) },
    ]) {
      expect(() => new PacketProtection(bad, good)).toThrowError(
        expect.objectContaining({ code: 'BRAID_ERR_USAGE' }) as Error,
      );
      expect(() => new PacketProtection(good, bad)).toThrowError(
        expect.objectContaining({ code: 'BRAID_ERR_USAGE' }) as Error,
      );
    }
  });

  it('keeps working when the caller overwrites the key material it passed in', () => {
    const k1 = newKey();
    const k2 = newKey();
    const a = new PacketProtection({ key: Buffer.from(k1.key), iv: Buffer.from(k1.iv) }, k2);
    const mine = { key: Buffer.from(k1.key), iv: Buffer.from(k1.iv) };
    const b = new PacketProtection(k2, mine);
    mine.key.fill(0);
    mine.iv.fill(0);
    const sealed = a.seal(plain(randomBytes(30)), header.length, 30, 4);
    expect(b.open(sealed, header.length, 4)).toBeInstanceOf(Buffer);
  });
});
