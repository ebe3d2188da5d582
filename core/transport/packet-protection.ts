import { createCipheriv, createDecipheriv } from 'node:crypto';
import { BraidError } from '../util/errors.js';

/** Key and IV of one direction of one path (from the TLS exporter, core/handshake/keys.ts). */
export interface PathKey {
  key: Buffer;
  iv: Buffer;
}

export type AeadAlgorithm = 'aes-256-gcm' | 'chacha20-poly1305';

export const TAG_LENGTH = 16;

/**
 * AEAD protection of the packets of one path. The clear header is the associated
 * data; the nonce is the IV XOR the packet number, as in RFC 9001 §5.3, so a nonce
 * never repeats under one key while packet numbers only grow.
 */
// Both AEADs take the same options; node's typings only overload them one by one.
export class PacketProtection {
  private readonly sendNonce = Buffer.alloc(12);
  private readonly recvNonce = Buffer.alloc(12);

  constructor(
    private readonly send: PathKey,
    private readonly receive: PathKey,
    private readonly algorithm: AeadAlgorithm = 'aes-256-gcm',
  ) {
    if (
      send.key.length !== 32 ||
      receive.key.length !== 32 ||
      send.iv.length !== 12 ||
      receive.iv.length !== 12
    ) {
      throw new BraidError('BRAID_ERR_INTERNAL', 'path keys must be 32 bytes and IVs 12 bytes');
    }
  }

  private static nonce(out: Buffer, iv: Buffer, pn: number): Buffer {
    iv.copy(out);
    // pn < 2^53: high 21 bits and low 32 bits, XORed into the last 8 bytes.
    const hi = Math.floor(pn / 0x100000000);
    const lo = pn >>> 0;
    out.writeUInt32BE((out.readUInt32BE(4) ^ hi) >>> 0, 4);
    out.writeUInt32BE((out.readUInt32BE(8) ^ lo) >>> 0, 8);
    return out;
  }

  /**
   * `packet` holds the header at [0, headerLength) and the plaintext right after.
   * Returns header ‖ ciphertext ‖ tag in one new buffer.
   */
  seal(packet: Buffer, headerLength: number, payloadLength: number, packetNumber: number): Buffer {
    const nonce = PacketProtection.nonce(this.sendNonce, this.send.iv, packetNumber);
    const cipher = createCipheriv(this.algorithm as 'aes-256-gcm', this.send.key, nonce, {
      authTagLength: TAG_LENGTH,
    });
    const header = packet.subarray(0, headerLength);
    cipher.setAAD(header, { plaintextLength: payloadLength });
    const out = Buffer.allocUnsafe(headerLength + payloadLength + TAG_LENGTH);
    header.copy(out, 0);
    const body = cipher.update(packet.subarray(headerLength, headerLength + payloadLength));
    body.copy(out, headerLength);
    let pos = headerLength + body.length;
    const rest = cipher.final();
    if (rest.length > 0) pos += rest.copy(out, pos);
    cipher.getAuthTag().copy(out, pos);
    return out;
  }

  /**
   * Seals like `seal`, but returns header, ciphertext and tag as three buffers for a
   * gathering send (sendmsg/writev): the ciphertext is never copied again.
   */
  sealParts(
    packet: Buffer,
    headerLength: number,
    payloadLength: number,
    packetNumber: number,
  ): [Buffer, Buffer, Buffer] {
    const nonce = PacketProtection.nonce(this.sendNonce, this.send.iv, packetNumber);
    const cipher = createCipheriv(this.algorithm as 'aes-256-gcm', this.send.key, nonce, {
      authTagLength: TAG_LENGTH,
    });
    // The header is copied: `packet` is the caller's scratch buffer, and a queued send keeps references.
    const header = Buffer.from(packet.subarray(0, headerLength));
    cipher.setAAD(header, { plaintextLength: payloadLength });
    const body = cipher.update(packet.subarray(headerLength, headerLength + payloadLength));
    const rest = cipher.final();
    return [header, rest.length === 0 ? body : Buffer.concat([body, rest]), cipher.getAuthTag()];
  }

  /** Returns the plaintext, or BRAID_ERR_DECRYPT for a short, forged or damaged packet. */
  open(packet: Uint8Array, headerLength: number, packetNumber: number): Buffer | BraidError {
    const payloadLength = packet.length - headerLength - TAG_LENGTH;
    if (payloadLength < 0) {
      return new BraidError('BRAID_ERR_DECRYPT', 'packet shorter than its tag', {
        value: packet.length,
      });
    }
    const nonce = PacketProtection.nonce(this.recvNonce, this.receive.iv, packetNumber);
    const decipher = createDecipheriv(this.algorithm as 'aes-256-gcm', this.receive.key, nonce, {
      authTagLength: TAG_LENGTH,
    });
    decipher.setAAD(packet.subarray(0, headerLength), { plaintextLength: payloadLength });
    decipher.setAuthTag(packet.subarray(packet.length - TAG_LENGTH));
    const body = decipher.update(packet.subarray(headerLength, headerLength + payloadLength));
    try {
      const rest = decipher.final();
      return rest.length === 0 ? body : Buffer.concat([body, rest]);
    } catch (err) {
      return new BraidError('BRAID_ERR_DECRYPT', 'packet failed authentication', {
        value: packetNumber,
        cause: err,
      });
    }
  }
}
