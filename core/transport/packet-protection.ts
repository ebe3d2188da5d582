import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type CipherChaCha20Poly1305,
  type CipherGCM,
  type KeyObject,
} from 'node:crypto';
import { BraidError } from '../util/errors.js';
import { NativeAeadContext, nativeAead } from './native-aead.js';

/** Key and IV of one direction of one path (from the TLS exporter, core/handshake/keys.ts). */
export interface PathKey {
  /** KEY_LENGTH bytes. */
  key: Buffer;
  /** IV_LENGTH bytes. */
  iv: Buffer;
}

export type AeadAlgorithm = 'aes-256-gcm' | 'chacha20-poly1305';
export const AEAD_ALGORITHMS: readonly AeadAlgorithm[] = ['aes-256-gcm', 'chacha20-poly1305'];

export const KEY_LENGTH = 32;
export const IV_LENGTH = 12;
/** Both AEADs append a 16-byte tag (the default tag length of both in node:crypto). */
export const TAG_LENGTH = 16;
/** Packet numbers are varints limited to 2^53-1 (core/wire/frame.ts). */
export const MAX_PACKET_NUMBER = Number.MAX_SAFE_INTEGER;

const TWO_32 = 0x1_0000_0000;

/**
 * Per-direction state: the key schedule input as a KeyObject (created once; it saves
 * the Buffer-to-key conversion on each packet) and a nonce buffer whose first four
 * bytes are the IV's and whose last eight are rewritten per packet.
 */
interface Direction {
  key: KeyObject;
  nonce: Buffer;
  ivHigh: number;
  ivLow: number;
}

function direction(k: PathKey, which: string): Direction {
  if (k.key.length !== KEY_LENGTH || k.iv.length !== IV_LENGTH) {
    throw new BraidError(
      'BRAID_ERR_USAGE',
      `${which} path key must be ${KEY_LENGTH} bytes and its IV ${IV_LENGTH} bytes`,
      { value: `key ${k.key.length} iv ${k.iv.length}` },
    );
  }
  // A copy: the caller's IV buffer may be reused or zeroed after this.
  const nonce = Buffer.from(k.iv);
  return {
    key: createSecretKey(k.key),
    nonce,
    ivHigh: nonce.readUInt32BE(4),
    ivLow: nonce.readUInt32BE(8),
  };
}

/**
 * The AEAD nonce of packet `pn`: the IV XOR the packet number as a 64-bit big-endian
 * integer in its last eight bytes (RFC 9001 §5.3), so a nonce never repeats under one
 * key while packet numbers are not reused. `pn` < 2^53 splits into 21 high bits and
 * 32 low bits. Node copies the IV into the cipher context, so the buffer is reused.
 */
function nonceFor(d: Direction, pn: number): Buffer {
  d.nonce.writeUInt32BE((d.ivHigh ^ Math.floor(pn / TWO_32)) >>> 0, 4);
  d.nonce.writeUInt32BE((d.ivLow ^ pn) >>> 0, 8);
  return d.nonce;
}

function isPacketNumber(pn: number): boolean {
  return Number.isSafeInteger(pn) && pn >= 0;
}

/**
 * AEAD protection of the packets of one path (DESIGN §3): the clear header is the
 * associated data, the nonce is derived from the packet number. The caller checks the
 * replay window before `open` and records the packet number only after `open`
 * succeeded (replay-window.ts), so forged packets cannot move the window.
 *
 * With OpenSSL reachable (native-aead.ts) each direction keeps one cipher context for
 * the path's life. Otherwise one node:crypto context per packet: node:crypto cannot
 * rekey or reuse a finished context, and creating one is about a quarter of the cost
 * of sealing 1200 bytes.
 */
export class PacketProtection {
  private readonly tx: Direction;
  private readonly rx: Direction;
  private readonly nativeTx: NativeAeadContext | undefined;
  private readonly nativeRx: NativeAeadContext | undefined;

  constructor(
    send: PathKey,
    receive: PathKey,
    readonly algorithm: AeadAlgorithm = 'aes-256-gcm',
    /** native false keeps node:crypto even where OpenSSL is reachable (tests, benchmarks). */
    options: { native?: boolean } = {},
  ) {
    if (!AEAD_ALGORITHMS.includes(algorithm)) {
      throw new BraidError('BRAID_ERR_USAGE', 'unknown AEAD algorithm', { value: algorithm });
    }
    this.tx = direction(send, 'send');
    this.rx = direction(receive, 'receive');
    const native = options.native === false ? undefined : nativeAead();
    if (native !== undefined && 'evp' in native) {
      this.nativeTx = new NativeAeadContext(native.evp, algorithm, send.key, true);
      this.nativeRx = new NativeAeadContext(native.evp, algorithm, receive.key, false);
    }
  }

  /** Whether packets go through OpenSSL contexts kept per direction (native-aead.ts). */
  get native(): boolean {
    return this.nativeTx !== undefined;
  }

  /**
   * `packet` holds the header at [0, headerLength) and the plaintext at
   * [headerLength, headerLength + payloadLength). Returns header ‖ ciphertext ‖ tag in
   * one new buffer; `packet` is not modified. Throws BRAID_ERR_USAGE for lengths that
   * do not fit `packet` or a packet number outside 0..2^53-1 (a caller's bug, never
   * peer input).
   */
  seal(packet: Buffer, headerLength: number, payloadLength: number, packetNumber: number): Buffer {
    this.checkSeal(packet, headerLength, payloadLength, packetNumber);
    const end = headerLength + payloadLength;
    const out = Buffer.allocUnsafe(end + TAG_LENGTH);
    packet.copy(out, 0, 0, headerLength);
    if (this.nativeTx !== undefined) {
      this.nativeTx.seal(
        nonceFor(this.tx, packetNumber),
        out.subarray(0, headerLength),
        packet.subarray(headerLength, end),
        out.subarray(headerLength, end),
        out.subarray(end),
      );
      return out;
    }
    const cipher = this.cipherFor(packetNumber);
    cipher.setAAD(out.subarray(0, headerLength), { plaintextLength: payloadLength });
    // node:crypto has no update-into-buffer, so the ciphertext is copied once into `out`.
    cipher.update(packet.subarray(headerLength, end)).copy(out, headerLength);
    // Both AEADs are stream modes: final() only computes the tag and yields no bytes.
    cipher.final();
    cipher.getAuthTag().copy(out, end);
    return out;
  }

  /**
   * Seals like `seal`, but returns header, ciphertext and tag as three buffers for a
   * gathering send (Subflow.sendParts: sendmsg with an iovec, writev), so the
   * ciphertext is not copied again. The header is a copy: `packet` is the caller's
   * scratch buffer, and a queued send keeps references.
   */
  sealParts(
    packet: Buffer,
    headerLength: number,
    payloadLength: number,
    packetNumber: number,
  ): [Buffer, Buffer, Buffer] {
    this.checkSeal(packet, headerLength, payloadLength, packetNumber);
    const header = Buffer.from(packet.subarray(0, headerLength));
    if (this.nativeTx !== undefined) {
      const sealed = Buffer.allocUnsafe(payloadLength + TAG_LENGTH);
      const body = sealed.subarray(0, payloadLength);
      const tag = sealed.subarray(payloadLength);
      this.nativeTx.seal(
        nonceFor(this.tx, packetNumber),
        header,
        packet.subarray(headerLength, headerLength + payloadLength),
        body,
        tag,
      );
      return [header, body, tag];
    }
    const cipher = this.cipherFor(packetNumber);
    cipher.setAAD(header, { plaintextLength: payloadLength });
    const body = cipher.update(packet.subarray(headerLength, headerLength + payloadLength));
    cipher.final();
    return [header, body, cipher.getAuthTag()];
  }

  private checkSeal(
    packet: Buffer,
    headerLength: number,
    payloadLength: number,
    packetNumber: number,
  ): void {
    if (
      !isPacketNumber(packetNumber) ||
      !(headerLength >= 0 && payloadLength >= 0 && headerLength + payloadLength <= packet.length)
    ) {
      throw new BraidError('BRAID_ERR_USAGE', 'seal: bad packet number or lengths', {
        value: `pn ${packetNumber} header ${headerLength} payload ${payloadLength} of ${packet.length}`,
      });
    }
  }

  private cipherFor(packetNumber: number): CipherGCM | CipherChaCha20Poly1305 {
    const nonce = nonceFor(this.tx, packetNumber);
    return this.algorithm === 'aes-256-gcm'
      ? createCipheriv('aes-256-gcm', this.tx.key, nonce)
      : createCipheriv('chacha20-poly1305', this.tx.key, nonce);
  }

  /**
   * Returns the plaintext of a packet whose header is [0, headerLength), or
   * BRAID_ERR_DECRYPT when it is shorter than header and tag, its tag does not verify
   * (forged, damaged, wrong key, wrong packet number) or the packet number is invalid.
   */
  open(packet: Uint8Array, headerLength: number, packetNumber: number): Buffer | BraidError {
    const end = packet.length - TAG_LENGTH;
    if (!(headerLength >= 0 && end >= headerLength) || !isPacketNumber(packetNumber)) {
      return new BraidError('BRAID_ERR_DECRYPT', 'packet too short or packet number invalid', {
        value: `length ${packet.length} header ${headerLength} pn ${packetNumber}`,
      });
    }
    const nonce = nonceFor(this.rx, packetNumber);
    if (this.nativeRx !== undefined) {
      const plaintext = Buffer.allocUnsafe(end - headerLength);
      if (
        this.nativeRx.open(
          nonce,
          packet.subarray(0, headerLength),
          packet.subarray(headerLength, end),
          packet.subarray(end),
          plaintext,
        )
      ) {
        return plaintext;
      }
      return new BraidError('BRAID_ERR_DECRYPT', 'packet failed authentication', {
        value: packetNumber,
      });
    }
    // authTagLength pins the tag size: setAuthTag would otherwise accept shorter tags.
    const decipher =
      this.algorithm === 'aes-256-gcm'
        ? createDecipheriv('aes-256-gcm', this.rx.key, nonce, { authTagLength: TAG_LENGTH })
        : createDecipheriv('chacha20-poly1305', this.rx.key, nonce, {
            authTagLength: TAG_LENGTH,
          });
    decipher.setAAD(packet.subarray(0, headerLength));
    decipher.setAuthTag(packet.subarray(end));
    const plaintext = decipher.update(packet.subarray(headerLength, end));
    try {
      decipher.final();
    } catch (err) {
      return new BraidError('BRAID_ERR_DECRYPT', 'packet failed authentication', {
        value: packetNumber,
        cause: err,
      });
    }
    return plaintext;
  }
}
