import dgram from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import { runTransfer } from '../../core/cli/transfer.js';
import { formatInvite, parseInvite } from '../../core/handshake/invite.js';
import { createLogger } from '../../core/util/log.js';
import { writeHeader } from '../../core/wire/packet-header.js';
import { encodeFrames } from '../../core/wire/encode.js';
import { PacketProtection } from '../../core/transport/packet-protection.js';
import type { Association } from '../../core/session/association.js';
import { impair, newCounters, seededRandom } from '../support/impaired-subflow.js';
import { useRelay } from '../support/relay-fixture.js';

const quiet = createLogger({ level: 'error' });

/** Sends each payload from one socket and reports whatever comes back within 400 ms. */
function sendUdp(port: number, payloads: Buffer[], from = '127.0.0.5'): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const replies: Buffer[] = [];
    socket.on('message', (msg) => replies.push(msg));
    socket.bind(0, from, () => {
      for (const p of payloads) socket.send(p, port, '127.0.0.1');
      setTimeout(() => {
        socket.close();
        resolve(replies);
      }, 400);
    });
  });
}

function sendTcp(
  port: number,
  payload: Buffer,
): Promise<{ reply: Buffer; closedBy: 'peer' | 'timeout' }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('connect', () => socket.write(payload));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ reply: Buffer.concat(chunks), closedBy: 'timeout' });
    }, 1500);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ reply: Buffer.concat(chunks), closedBy: 'peer' });
    });
  });
}

/** Echoes 1 MB through the relay on an existing association and checks it comes back whole. */
async function expectEcho(client: BraidClient): Promise<void> {
  const stream = client.openStream({ target: 'echo' });
  const payload = randomBytes(1_000_000);
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => stream.on('end', resolve));
  stream.end(payload);
  await ended;
  expect(Buffer.concat(chunks).equals(payload)).toBe(true);
}

describe('hostile input against a running relay', () => {
  const relayOf = useRelay();

  it('refuses a wrong client key with BRAID_ERR_AUTH_FAILED', async () => {
    const invite = parseInvite(relayOf().invite);
    const bad = formatInvite({ ...invite, key: randomBytes(32) });
    await expect(
      BraidClient.connect({ invite: bad, via: ['127.0.0.2'], logger: quiet }),
    ).rejects.toMatchObject({ code: 'BRAID_ERR_AUTH_FAILED' });
  });

  it('refuses a relay whose certificate does not match the pinned fingerprint with BRAID_ERR_FINGERPRINT', async () => {
    const invite = parseInvite(relayOf().invite);
    const bad = formatInvite({ ...invite, fingerprint: 'ab'.repeat(32) });
    await expect(
      BraidClient.connect({ invite: bad, via: ['127.0.0.2'], logger: quiet }),
    ).rejects.toMatchObject({ code: 'BRAID_ERR_FINGERPRINT' });
  });

  it('gives no reply to a forged JOIN, and drops replayed and tampered packets while the transfer completes intact', async () => {
    const connected = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2'],
      transports: ['udp'],
      logger: quiet,
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    const client = connected.client;
    const association = client.association;
    const udpPort = Number(association.pathSummary()[0]!.remote.split(':')[1]);
    const server = [...relayOf().listener.associations.values()][0]!;
    // Forged JOIN for a new path: right association id, keys it cannot have.
    const forged = Buffer.alloc(200);
    let pos = writeHeader(forged, 0, association.id, 7, 0);
    const headerLen = pos;
    const protection = new PacketProtection(
      { key: randomBytes(32), iv: randomBytes(12) },
      { key: randomBytes(32), iv: randomBytes(12) },
    );
    const join = encodeFrames([
      {
        type: 'join',
        associationId: association.id,
        pathId: 7,
        transport: 'udp',
        mac: randomBytes(32),
      },
    ]);
    join.copy(forged, pos);
    pos += join.length;
    const sealed = protection.seal(forged.subarray(0, pos), headerLen, join.length, 0);
    expect(await sendUdp(udpPort, [sealed])).toEqual([]);
    // A JOIN sealed with the real path keys but a wrong MAC: still no reply.
    const keys = association.secrets.pathKeys(8, 'client');
    const real = new PacketProtection(keys.send, keys.receive);
    const buf = Buffer.alloc(200);
    let p2 = writeHeader(buf, 0, association.id, 8, 0);
    const hl2 = p2;
    const badMac = encodeFrames([
      {
        type: 'join',
        associationId: association.id,
        pathId: 8,
        transport: 'udp',
        mac: Buffer.alloc(32),
      },
    ]);
    badMac.copy(buf, p2);
    p2 += badMac.length;
    expect(await sendUdp(udpPort, [real.seal(buf.subarray(0, p2), hl2, badMac.length, 0)])).toEqual(
      [],
    );
    expect(server.paths.has(7)).toBe(false);
    expect(server.paths.has(8)).toBe(false);
    expect(relayOf().listener.stats.joinsRefused).toBeGreaterThanOrEqual(2);
    // The association the forgeries aimed at still carries data.
    await expectEcho(client);
    client.close();

    // Replays and bit flips on the wire: dropped by the replay window and the AEAD.
    const counters = newCounters();
    const random = seededRandom(7);
    const seen: Association[] = [];
    const onAssociation = (a: Association): void => void seen.push(a);
    relayOf().listener.on('association', onAssociation);
    const result = await runTransfer({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      bytes: 20_000_000,
      logger: quiet,
      config: { loopbackUdpPacketSize: 1452 },
      wrapSubflow: (subflow) =>
        impair(subflow, { duplicateRate: 0.05, tamperRate: 0.05, random }, counters),
    });
    relayOf().listener.off('association', onAssociation);
    expect(counters.duplicated).toBeGreaterThan(100);
    expect(counters.tampered).toBeGreaterThan(100);
    expect(result.verified).toBe(true);
    const serverPaths = [...seen[0]!.paths.values()];
    expect(serverPaths.reduce((n, p) => n + p.stats.replaysDropped, 0)).toBeGreaterThan(50);
    expect(serverPaths.reduce((n, p) => n + p.stats.decryptFailures, 0)).toBeGreaterThan(50);
  });

  it('rejects random bytes at the control, UDP and TCP ports and keeps serving a legitimate transfer', async () => {
    const connected = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2'],
      transports: ['udp'],
      logger: quiet,
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    const client = connected.client;
    const summary = client.association.pathSummary()[0]!;
    const udpPort = Number(summary.remote.split(':')[1]);
    const controlPort = relayOf().listener.port;
    const before = { ...relayOf().listener.stats };
    const random = seededRandom(1);
    const junk = Array.from({ length: 200 }, () =>
      Buffer.from(
        Array.from({ length: 1 + Math.floor(random() * 1400) }, () => Math.floor(random() * 256)),
      ),
    );
    // Junk that names the live association and path, from another address: dropped
    // before decryption, because a path only accepts packets from its own peer.
    const aimed = junk.slice(0, 50).map((j) => {
      const b = Buffer.alloc(32 + j.length);
      const headerLength = writeHeader(b, 0, client.association.id, 0, 1_000_000);
      j.copy(b, headerLength);
      return b.subarray(0, headerLength + j.length);
    });
    expect(await sendUdp(udpPort, [...junk, ...aimed])).toEqual([]);
    expect(relayOf().listener.stats.wrongSource - before.wrongSource).toBe(50);
    const control = await sendTcp(controlPort, randomBytes(4096));
    expect(control.closedBy).toBe('peer');
    const tcpPort = (relayOf().listener as unknown as { tcp: { port: number } }).tcp.port;
    const data = await sendTcp(
      tcpPort,
      Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), randomBytes(100)]),
    );
    expect(data.closedBy).toBe('peer');
    expect(data.reply.length).toBe(0);
    expect(
      relayOf().listener.stats.badHeader + relayOf().listener.stats.unknownAssociation,
    ).toBeGreaterThan(before.badHeader + before.unknownAssociation);
    // The association that was live during all of this still carries data.
    await expectEcho(client);
    client.close();
    const result = await runTransfer({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'tcp'],
      bytes: 5_000_000,
      logger: quiet,
    });
    expect(result.verified).toBe(true);
  });
});
