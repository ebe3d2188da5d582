import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { BraidError } from '../util/errors.js';
import { errorFields } from '../util/log.js';
import type { AeadAlgorithm } from './packet-protection.js';

/**
 * AEAD through the OpenSSL that node itself is linked with, one reusable cipher context
 * per key. node:crypto creates a context per packet (createCipheriv), which costs more
 * than sealing 1400 bytes and leaves a weak native handle per packet for the garbage
 * collector: at 50 Mbit/s the relay spent ~9 µs of its ~23 µs per packet there. Here
 * a packet is five calls on a context kept for the path's life, with the IV reset
 * (EVP_EncryptInit_ex with no cipher and no key keeps the key schedule).
 *
 * Only where it is safe to use: Linux or macOS node whose binary exports libcrypto's
 * EVP functions (node does, for addons), with koffi present, and only after a self-test
 * against node:crypto on a random key, nonce and message in both directions and a
 * forged tag (nativeAeadStatus). Anything else — Electron's BoringSSL, which has no
 * ChaCha20-Poly1305 EVP_CIPHER, a missing symbol, a mismatch — leaves node:crypto in
 * use (packet-protection.ts). BRAID_NATIVE_AEAD=0 turns it off.
 */

/** OpenSSL's EVP_CTRL_AEAD_GET_TAG / EVP_CTRL_AEAD_SET_TAG (include/openssl/evp.h). */
const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
const TAG_LENGTH = 16;

type Ptr = unknown;
interface Evp {
  cipher: Record<AeadAlgorithm, Ptr>;
  newCtx(): Ptr;
  freeCtx(ctx: Ptr): void;
  encryptInit(ctx: Ptr, cipher: Ptr, engine: null, key: Buffer | null, iv: Buffer | null): number;
  encryptUpdate(
    ctx: Ptr,
    out: Uint8Array | null,
    outl: Int32Array,
    data: Uint8Array,
    n: number,
  ): number;
  encryptFinal(ctx: Ptr, out: Uint8Array, outl: Int32Array): number;
  decryptInit(ctx: Ptr, cipher: Ptr, engine: null, key: Buffer | null, iv: Buffer | null): number;
  decryptUpdate(
    ctx: Ptr,
    out: Uint8Array | null,
    outl: Int32Array,
    data: Uint8Array,
    n: number,
  ): number;
  decryptFinal(ctx: Ptr, out: Uint8Array, outl: Int32Array): number;
  ctrl(ctx: Ptr, type: number, arg: number, ptr: Uint8Array): number;
}

function loadEvp(): Evp | string {
  if (process.env.BRAID_NATIVE_AEAD === '0') return 'off (BRAID_NATIVE_AEAD=0)';
  if (process.versions.electron !== undefined) return 'Electron links BoringSSL';
  if (process.platform !== 'linux' && process.platform !== 'darwin') {
    return `not on ${process.platform}`;
  }
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    // null: the running program, whose exports include node's libcrypto.
    const lib = koffi.load(null);
    const ctxNew = lib.func('void *EVP_CIPHER_CTX_new()');
    const ctxFree = lib.func('void EVP_CIPHER_CTX_free(void *)');
    const init = (name: string) =>
      lib.func(`int ${name}(void *, const void *, void *, const uint8_t *, const uint8_t *)`);
    const update = (name: string) =>
      lib.func(`int ${name}(void *, uint8_t *, int *, const uint8_t *, int)`);
    const final = (name: string) => lib.func(`int ${name}(void *, uint8_t *, int *)`);
    const encryptInit = init('EVP_EncryptInit_ex');
    const encryptUpdate = update('EVP_EncryptUpdate');
    const encryptFinal = final('EVP_EncryptFinal_ex');
    const decryptInit = init('EVP_DecryptInit_ex');
    const decryptUpdate = update('EVP_DecryptUpdate');
    const decryptFinal = final('EVP_DecryptFinal_ex');
    const ctrl = lib.func('int EVP_CIPHER_CTX_ctrl(void *, int, int, uint8_t *)');
    const aes = lib.func('const void *EVP_aes_256_gcm()')() as Ptr;
    const chacha = lib.func('const void *EVP_chacha20_poly1305()')() as Ptr;
    if (aes === null || chacha === null) return 'libcrypto lacks a cipher';
    return {
      cipher: { 'aes-256-gcm': aes, 'chacha20-poly1305': chacha },
      newCtx: () => ctxNew() as Ptr,
      freeCtx: (ctx) => void ctxFree(ctx),
      encryptInit: (c, ci, e, k, iv) => encryptInit(c, ci, e, k, iv) as number,
      encryptUpdate: (c, o, l, d, n) => encryptUpdate(c, o, l, d, n) as number,
      encryptFinal: (c, o, l) => encryptFinal(c, o, l) as number,
      decryptInit: (c, ci, e, k, iv) => decryptInit(c, ci, e, k, iv) as number,
      decryptUpdate: (c, o, l, d, n) => decryptUpdate(c, o, l, d, n) as number,
      decryptFinal: (c, o, l) => decryptFinal(c, o, l) as number,
      ctrl: (c, t, a, p) => ctrl(c, t, a, p) as number,
    };
  } catch (err) {
    return `koffi could not bind libcrypto: ${errorFields(err).error ?? 'unknown'}`;
  }
}

const contexts = new FinalizationRegistry<{ evp: Evp; ctx: Ptr }>(({ evp, ctx }) =>
  evp.freeCtx(ctx),
);

/** One direction's key in one reusable OpenSSL context. */
export class NativeAeadContext {
  private readonly ctx: Ptr;
  private readonly outl = new Int32Array(1);
  private readonly empty = Buffer.alloc(0);

  constructor(
    private readonly evp: Evp,
    algorithm: AeadAlgorithm,
    key: Buffer,
    encrypt: boolean,
  ) {
    const ctx = evp.newCtx();
    if (ctx === null) throw new BraidError('BRAID_ERR_INTERNAL', 'EVP_CIPHER_CTX_new failed');
    this.ctx = ctx;
    contexts.register(this, { evp, ctx });
    const cipher = evp.cipher[algorithm];
    const ok = encrypt
      ? evp.encryptInit(ctx, cipher, null, key, null)
      : evp.decryptInit(ctx, cipher, null, key, null);
    if (ok !== 1) {
      throw new BraidError('BRAID_ERR_INTERNAL', 'EVP cipher init failed', { value: algorithm });
    }
  }

  /**
   * Writes the ciphertext of `plaintext` at `out[0..n)` and the tag at `tag[0..16)`;
   * `out` and `tag` may be views of one buffer.
   */
  seal(
    nonce: Buffer,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
    tag: Uint8Array,
  ): void {
    const { evp, ctx, outl } = this;
    if (
      evp.encryptInit(ctx, null, null, null, nonce) !== 1 ||
      evp.encryptUpdate(ctx, null, outl, aad, aad.length) !== 1 ||
      (plaintext.length > 0 &&
        evp.encryptUpdate(ctx, out, outl, plaintext, plaintext.length) !== 1) ||
      evp.encryptFinal(ctx, tag, outl) !== 1 ||
      evp.ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LENGTH, tag) !== 1
    ) {
      throw new BraidError('BRAID_ERR_INTERNAL', 'EVP seal failed');
    }
  }

  /** Writes the plaintext at `out`; false when the tag does not verify. */
  open(
    nonce: Buffer,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    tag: Uint8Array,
    out: Uint8Array,
  ): boolean {
    const { evp, ctx, outl } = this;
    if (
      evp.decryptInit(ctx, null, null, null, nonce) !== 1 ||
      evp.ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LENGTH, tag) !== 1 ||
      evp.decryptUpdate(ctx, null, outl, aad, aad.length) !== 1 ||
      (ciphertext.length > 0 &&
        evp.decryptUpdate(ctx, out, outl, ciphertext, ciphertext.length) !== 1)
    ) {
      return false;
    }
    // Final writes nothing for these stream modes; `empty` stands for its out pointer.
    return evp.decryptFinal(ctx, out.length > 0 ? out : this.empty, outl) === 1;
  }
}

/**
 * Seals and opens a random message with a random key and nonce both ways, natively and
 * with node:crypto, and checks a forged tag is refused; a string says what differed.
 */
function selfTest(evp: Evp): string | undefined {
  for (const algorithm of ['aes-256-gcm', 'chacha20-poly1305'] as const) {
    const key = randomBytes(32);
    const aad = randomBytes(21);
    const plaintext = randomBytes(1337);
    for (let round = 0; round < 2; round++) {
      const nonce = randomBytes(12);
      const sealer = new NativeAeadContext(evp, algorithm, key, true);
      const out = Buffer.alloc(plaintext.length + TAG_LENGTH);
      sealer.seal(
        nonce,
        aad,
        plaintext,
        out.subarray(0, plaintext.length),
        out.subarray(plaintext.length),
      );
      const c =
        algorithm === 'aes-256-gcm'
          ? createCipheriv(algorithm, key, nonce, { authTagLength: TAG_LENGTH })
          : createCipheriv(algorithm, key, nonce, { authTagLength: TAG_LENGTH });
      c.setAAD(aad, { plaintextLength: plaintext.length });
      const expected = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
      if (!expected.equals(out)) return `${algorithm} seal differs from node:crypto`;
      const opener = new NativeAeadContext(evp, algorithm, key, false);
      const back = Buffer.alloc(plaintext.length);
      const ct = expected.subarray(0, plaintext.length);
      const tag = expected.subarray(plaintext.length);
      if (!opener.open(nonce, aad, ct, tag, back) || !back.equals(plaintext)) {
        return `${algorithm} open refused or altered node:crypto's packet`;
      }
      const forged = Buffer.from(tag);
      forged[0] = forged[0]! ^ 1;
      if (opener.open(nonce, aad, ct, forged, back)) return `${algorithm} accepted a forged tag`;
      const d =
        algorithm === 'aes-256-gcm'
          ? createDecipheriv(algorithm, key, nonce, { authTagLength: TAG_LENGTH })
          : createDecipheriv(algorithm, key, nonce, { authTagLength: TAG_LENGTH });
      d.setAAD(aad, { plaintextLength: plaintext.length });
      d.setAuthTag(tag);
      if (!Buffer.concat([d.update(ct), d.final()]).equals(plaintext)) {
        return `${algorithm} node:crypto disagrees with itself`;
      }
    }
  }
  return undefined;
}

let loaded: { evp: Evp } | { reason: string } | undefined;

/** The bound libcrypto after its self-test, or why it is not used; decided once per process. */
export function nativeAead(): { evp: Evp } | { reason: string } {
  if (loaded !== undefined) return loaded;
  const evp = loadEvp();
  if (typeof evp === 'string') return (loaded = { reason: evp });
  try {
    const failed = selfTest(evp);
    loaded = failed === undefined ? { evp } : { reason: `self-test: ${failed}` };
  } catch (err) {
    loaded = { reason: `self-test threw: ${errorFields(err).error ?? 'unknown'}` };
  }
  return loaded;
}

export type { Evp };
