import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  deriveAssociationSecrets,
  helloProof,
  type AssociationSecrets,
} from '../../../core/handshake/keys.js';
import type { JoinFrame, TransportKind } from '../../../core/wire/frame.js';

const exporter = randomBytes(32);
const associationId = randomBytes(8);
const client = deriveAssociationSecrets(exporter, associationId);
const server = deriveAssociationSecrets(exporter, associationId);

function join(secrets: AssociationSecrets, pathId: number, transport: TransportKind): JoinFrame {
  return {
    type: 'join',
    associationId: secrets.associationId,
    pathId,
    transport,
    mac: secrets.joinMac(pathId, transport),
  };
}

function hex(b: Buffer): string {
  return b.toString('hex');
}

describe('path keys', () => {
  it("give the client's send key to the server as its receive key, and back", () => {
    for (const pathId of [0, 1, 7, 0xffff_ffff]) {
      const c = client.pathKeys(pathId, 'client');
      const s = server.pathKeys(pathId, 'server');
      expect(hex(c.send.key)).toBe(hex(s.receive.key));
      expect(hex(c.send.iv)).toBe(hex(s.receive.iv));
      expect(hex(s.send.key)).toBe(hex(c.receive.key));
      expect(hex(s.send.iv)).toBe(hex(c.receive.iv));
      expect(c.send.key.length).toBe(32);
      expect(c.send.iv.length).toBe(12);
    }
  });

  it('differ per path and per direction', () => {
    const seen = new Set<string>();
    for (let pathId = 0; pathId < 16; pathId++) {
      const k = client.pathKeys(pathId, 'client');
      seen.add(hex(k.send.key));
      seen.add(hex(k.receive.key));
      seen.add(hex(k.send.iv));
      seen.add(hex(k.receive.iv));
    }
    expect(seen.size).toBe(16 * 4);
  });

  it('differ per association id and per exporter secret', () => {
    const base = hex(client.pathKeys(1, 'client').send.key);
    const otherId = deriveAssociationSecrets(exporter, randomBytes(8));
    const otherSecret = deriveAssociationSecrets(randomBytes(32), associationId);
    expect(hex(otherId.pathKeys(1, 'client').send.key)).not.toBe(base);
    expect(hex(otherSecret.pathKeys(1, 'client').send.key)).not.toBe(base);
  });

  it('follow HKDF-SHA256 with the association id as salt and the documented labels', async () => {
    const { hkdfSync } = await import('node:crypto');
    const c2s = Buffer.from(hkdfSync('sha256', exporter, associationId, 'braid path 3 c2s', 44));
    const keys = client.pathKeys(3, 'client');
    expect(hex(keys.send.key)).toBe(hex(c2s.subarray(0, 32)));
    expect(hex(keys.send.iv)).toBe(hex(c2s.subarray(32)));
  });

  it('refuse a path id that is not a u32 with BRAID_ERR_USAGE', () => {
    for (const bad of [-1, 1.5, 2 ** 32]) {
      expect(() => client.pathKeys(bad, 'client')).toThrow(
        expect.objectContaining({ code: 'BRAID_ERR_USAGE' }),
      );
    }
  });
});

describe('JOIN MAC', () => {
  it('verifies a JOIN made by the other end of the same association', () => {
    expect(server.verifyJoin(join(client, 5, 'udp'))).toBe(true);
    expect(server.verifyJoin(join(client, 5, 'tcp'))).toBe(true);
  });

  it('rejects a JOIN with any bit of its MAC flipped', () => {
    const good = join(client, 5, 'udp');
    for (let bit = 0; bit < 256; bit += 37) {
      const mac = Buffer.from(good.mac);
      mac[bit >> 3]! ^= 1 << (bit & 7);
      expect(server.verifyJoin({ ...good, mac })).toBe(false);
    }
  });

  it('rejects a MAC presented for another path id or transport', () => {
    const good = join(client, 5, 'udp');
    expect(server.verifyJoin({ ...good, pathId: 6 })).toBe(false);
    expect(server.verifyJoin({ ...good, transport: 'tcp' })).toBe(false);
  });

  it('rejects a JOIN for another association, even with a MAC valid there', () => {
    const other = deriveAssociationSecrets(exporter, randomBytes(8));
    expect(server.verifyJoin(join(other, 5, 'udp'))).toBe(false);
    // Right association id, MAC from other keys.
    expect(server.verifyJoin({ ...join(other, 5, 'udp'), associationId })).toBe(false);
  });

  it('rejects malformed JOINs without throwing', () => {
    const good = join(client, 5, 'udp');
    expect(server.verifyJoin({ ...good, mac: good.mac.subarray(0, 31) })).toBe(false);
    expect(server.verifyJoin({ ...good, associationId: randomBytes(4) })).toBe(false);
    expect(server.verifyJoin({ ...good, pathId: -1 })).toBe(false);
  });

  it('is HMAC-SHA256 over associationId ‖ pathId u32 BE ‖ transport byte', async () => {
    const { hkdfSync } = await import('node:crypto');
    const joinKey = Buffer.from(hkdfSync('sha256', exporter, associationId, 'braid join', 32));
    const message = Buffer.concat([associationId, Buffer.from([0, 0, 1, 2, 1])]);
    expect(hex(client.joinMac(258, 'tcp'))).toBe(
      hex(createHmac('sha256', joinKey).update(message).digest()),
    );
  });
});

describe('helloProof', () => {
  it('depends on both the client key and the exporter value', () => {
    const key = randomBytes(32);
    const ekm = randomBytes(32);
    const proof = helloProof(key, ekm);
    expect(proof.length).toBe(32);
    expect(hex(helloProof(key, ekm))).toBe(hex(proof));
    expect(hex(helloProof(randomBytes(32), ekm))).not.toBe(hex(proof));
    expect(hex(helloProof(key, randomBytes(32)))).not.toBe(hex(proof));
  });
});

describe('deriveAssociationSecrets', () => {
  it('refuses a wrong-sized exporter secret or association id with BRAID_ERR_USAGE', () => {
    expect(() => deriveAssociationSecrets(randomBytes(16), associationId)).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_USAGE' }),
    );
    expect(() => deriveAssociationSecrets(exporter, randomBytes(9))).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_USAGE' }),
    );
  });
});
