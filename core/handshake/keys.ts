/**
 * Keys of an association, all derived from the TLS 1.3 control connection's exporter
 * (RFC 8446 §7.5) so that nothing secret crosses the wire (DESIGN §3.3):
 *
 *   exporterSecret = TLS-Exporter("EXPORTER-braid-v1", associationId, 32)
 *   joinKey        = HKDF-SHA256(exporterSecret, salt = associationId, "braid join", 32)
 *   path keys      = HKDF-SHA256(exporterSecret, salt = associationId,
 *                                "braid path <pathId> c2s" | "… s2c", 44) = key(32) ‖ iv(12)
 *
 * HKDF is RFC 5869. Each direction of each path has its own key, so AEAD nonces (the
 * packet number XOR the iv) never repeat under one key across paths or directions.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { ASSOCIATION_ID_LENGTH, MAC_LENGTH } from '../wire/frame.js';
import type { JoinFrame, TransportKind } from '../wire/frame.js';
import { BraidError } from '../util/errors.js';

/** Exporter label for the association secret; the association id is the context. */
export const EXPORTER_LABEL = 'EXPORTER-braid-v1';
/** Exporter label for the client's HELLO proof; the context is empty. */
export const CLIENT_AUTH_LABEL = 'EXPORTER-braid-v1 client-auth';
/** Bytes taken from each exporter. */
export const EXPORTER_LENGTH = 32;
/** AES-256-GCM / ChaCha20-Poly1305 key length. */
export const PATH_KEY_LENGTH = 32;
/** AEAD nonce length (RFC 5116 §3.2 recommends 12). */
export const PATH_IV_LENGTH = 12;

const JOIN_INFO = 'braid join';
const MAX_PATH_ID = 0xffff_ffff;

export interface PathKey {
  key: Buffer;
  iv: Buffer;
}

export interface PathKeys {
  send: PathKey;
  receive: PathKey;
}

export type Role = 'client' | 'server';

export interface AssociationSecrets {
  readonly associationId: Buffer;
  /** HMAC-SHA256(joinKey, associationId ‖ pathId u32 BE ‖ transport byte), for a JOIN frame. */
  joinMac(pathId: number, transport: TransportKind): Buffer;
  /** True when the JOIN is for this association and its MAC verifies (constant-time compare). */
  verifyJoin(frame: JoinFrame): boolean;
  /** This side's keys for a path: the client's `send` is the server's `receive`. */
  pathKeys(pathId: number, role: Role): PathKeys;
}

function transportByte(transport: TransportKind): number {
  switch (transport) {
    case 'udp':
      return 0;
    case 'tcp':
      return 1;
  }
}

export function isPathId(pathId: number): boolean {
  return Number.isInteger(pathId) && pathId >= 0 && pathId <= MAX_PATH_ID;
}

function checkPathId(pathId: number): void {
  if (!isPathId(pathId)) {
    throw new BraidError('BRAID_ERR_USAGE', 'path id must be a 32-bit unsigned integer', {
      value: pathId,
      path: pathId,
    });
  }
}

function hkdf(secret: Buffer, salt: Buffer, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, salt, info, length));
}

function splitPathKey(material: Buffer): PathKey {
  return {
    key: material.subarray(0, PATH_KEY_LENGTH),
    iv: material.subarray(PATH_KEY_LENGTH, PATH_KEY_LENGTH + PATH_IV_LENGTH),
  };
}

class DerivedSecrets implements AssociationSecrets {
  readonly associationId: Buffer;
  private readonly exporterSecret: Buffer;
  private readonly joinKey: Buffer;

  constructor(exporterSecret: Buffer, associationId: Buffer) {
    this.associationId = Buffer.from(associationId);
    this.exporterSecret = Buffer.from(exporterSecret);
    this.joinKey = hkdf(this.exporterSecret, this.associationId, JOIN_INFO, MAC_LENGTH);
  }

  joinMac(pathId: number, transport: TransportKind): Buffer {
    checkPathId(pathId);
    const tail = Buffer.alloc(5);
    tail.writeUInt32BE(pathId, 0);
    tail[4] = transportByte(transport);
    return createHmac('sha256', this.joinKey).update(this.associationId).update(tail).digest();
  }

  verifyJoin(frame: JoinFrame): boolean {
    if (
      frame.associationId.length !== ASSOCIATION_ID_LENGTH ||
      frame.mac.length !== MAC_LENGTH ||
      !isPathId(frame.pathId) ||
      (frame.transport !== 'udp' && frame.transport !== 'tcp')
    ) {
      return false;
    }
    // Both compares always run, so the time taken does not tell which one failed.
    const sameAssociation = timingSafeEqual(frame.associationId, this.associationId);
    const expected = this.joinMac(frame.pathId, frame.transport);
    const sameMac = timingSafeEqual(frame.mac, expected);
    return sameAssociation && sameMac;
  }

  pathKeys(pathId: number, role: Role): PathKeys {
    checkPathId(pathId);
    const c2s = splitPathKey(
      hkdf(
        this.exporterSecret,
        this.associationId,
        `braid path ${pathId} c2s`,
        PATH_KEY_LENGTH + PATH_IV_LENGTH,
      ),
    );
    const s2c = splitPathKey(
      hkdf(
        this.exporterSecret,
        this.associationId,
        `braid path ${pathId} s2c`,
        PATH_KEY_LENGTH + PATH_IV_LENGTH,
      ),
    );
    return role === 'client' ? { send: c2s, receive: s2c } : { send: s2c, receive: c2s };
  }
}

/**
 * Derives an association's secrets from the exporter value both ends read after
 * HELLO_ACK: `tlsSocket.exportKeyingMaterial(32, EXPORTER_LABEL, associationId)`.
 */
export function deriveAssociationSecrets(
  exporterSecret: Buffer,
  associationId: Buffer,
): AssociationSecrets {
  if (exporterSecret.length !== EXPORTER_LENGTH) {
    throw new BraidError('BRAID_ERR_USAGE', `exporter secret must be ${EXPORTER_LENGTH} bytes`, {
      value: exporterSecret.length,
    });
  }
  if (associationId.length !== ASSOCIATION_ID_LENGTH) {
    throw new BraidError(
      'BRAID_ERR_USAGE',
      `association id must be ${ASSOCIATION_ID_LENGTH} bytes`,
      { value: associationId },
    );
  }
  return new DerivedSecrets(exporterSecret, associationId);
}

/**
 * The client's proof in HELLO: HMAC-SHA256(clientKey, exporter value for
 * CLIENT_AUTH_LABEL with an empty context). Binding the proof to this TLS channel
 * means it shows possession of the key without sending it, and cannot be replayed on
 * another connection.
 */
export function helloProof(clientKey: Buffer, exporterProof: Buffer): Buffer {
  return createHmac('sha256', clientKey).update(exporterProof).digest();
}
