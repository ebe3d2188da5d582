/**
 * SECURITY.md, threat 1 (an on-path attacker on any uplink) against the data paths:
 * forged and replayed JOINs, a stolen association id without keys, and packets
 * replayed, reordered, truncated and bit-flipped in both directions. Each attack runs
 * while a legitimate echo transfer uses the same association, and that transfer must
 * come back with its SHA-256 intact. test/integration/security.test.ts covers a forged
 * JOIN from scratch, duplicates and single bit flips client→relay; these extend it.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import type { Association } from '../../core/session/association.js';
import { createLogger } from '../../core/util/log.js';
import { decodeHeader, writeHeader } from '../../core/wire/packet-header.js';
import { seededRandom } from '../support/impaired-subflow.js';
import { useRelay } from '../support/relay-fixture.js';
import {
  echoTransfer,
  probeTcp,
  probeUdp,
  tapSubflow,
  until,
  type OnPathTap,
} from './support/on-path.js';

const quiet = createLogger({ level: 'error' });
const ATTACKER = '127.0.0.9';

interface Tapped {
  client: BraidClient;
  taps: Map<string, OnPathTap>;
  server: Association;
}

/** Sum of a path counter over the server side of an association. */
function serverCount(a: Association, key: 'replaysDropped' | 'decryptFailures'): number {
  let n = 0;
  for (const p of a.paths.values()) n += p.stats[key];
  return n;
}

/** Rewrites the clear header of a sealed packet (keeping the sealed part as it was). */
function reheader(packet: Buffer, pathId: number, packetNumber: number): Buffer {
  const h = decodeHeader(packet);
  if (!h.ok) throw h.error;
  const out = Buffer.alloc(32 + packet.length);
  const len = writeHeader(out, 0, h.value.header.associationId, pathId, packetNumber);
  packet.copy(out, len, h.value.length);
  return out.subarray(0, len + packet.length - h.value.length);
}

function tcpRecord(body: Buffer): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

describe('on-path attacker against the data paths of a live association', () => {
  const relayOf = useRelay();
  const open: BraidClient[] = [];
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });

  async function connectTapped(
    via: string[],
    transports: Array<'udp' | 'tcp'> = via.map(() => 'udp'),
  ): Promise<Tapped> {
    const taps = new Map<string, OnPathTap>();
    const seen: Association[] = [];
    const onAssociation = (a: Association): void => void seen.push(a);
    relayOf().listener.on('association', onAssociation);
    const connected = await BraidClient.connect({
      invite: relayOf().invite,
      via,
      transports,
      logger: quiet,
      wrapSubflow: (subflow, plan) => {
        const { wrapped, tap } = tapSubflow(subflow, 4096);
        taps.set(plan.localAddress, tap);
        return wrapped;
      },
    });
    relayOf().listener.off('association', onAssociation);
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    open.push(connected.client);
    const server = seen.find((a) => a.id.equals(connected.client.association.id));
    if (server === undefined) throw new Error('relay side of the association not found');
    return { client: connected.client, taps, server };
  }

  it('gives no reply and no path to a captured JOIN replayed from another address, on the path itself, or re-addressed to a new path id', async () => {
    const { client, taps, server } = await connectTapped(['127.0.0.2', '127.0.0.3']);
    const transfer = echoTransfer(client, 6_000_000);
    const tap = taps.get('127.0.0.2')!;
    const join = tap.sent[0]!;
    const header = decodeHeader(join);
    expect(header.ok && header.value.header.pathId).toBe(0);
    const port = Number(client.association.pathSummary()[0]!.remote.split(':')[1]);
    const stats = relayOf().listener.stats;
    const before = { ...stats };
    const pathsBefore = server.paths.size;

    // Another host replays the JOIN it sniffed: the path exists and is pinned to its source.
    // (Each probe is sent several times: the busy relay socket may overflow and drop some.)
    expect(
      (
        await probeUdp(
          port,
          Array.from({ length: 8 }, () => join),
          ATTACKER,
        )
      ).replies,
    ).toEqual([]);
    expect(stats.wrongSource - before.wrongSource).toBeGreaterThan(0);
    // Replayed on the path, from the right address: packet number 0 was seen.
    const replays = serverCount(server, 'replaysDropped');
    tap.inject(join);
    await until(() => serverCount(server, 'replaysDropped') > replays);
    // Re-addressed to path 9: the header is the AEAD's associated data, so it fails.
    const moved = Array.from({ length: 8 }, (_, i) => reheader(join, 9, i % 2));
    expect((await probeUdp(port, moved, ATTACKER)).replies).toEqual([]);
    expect(stats.joinsRefused - before.joinsRefused).toBeGreaterThan(0);
    expect(server.paths.has(9)).toBe(false);
    // The same JOIN as the first record of a TCP data connection: closed without a byte.
    const overTcp = await probeTcp(relayTcpPort(), tcpRecord(reheader(join, 11, 0)), ATTACKER);
    expect(overTcp).toMatchObject({ closedBy: 'peer', received: 0 });

    expect(server.paths.size).toBe(pathsBefore);
    expect([...server.paths.values()].every((p) => p.subflow.remoteAddress !== ATTACKER)).toBe(
      true,
    );
    const result = await transfer;
    expect(result.receivedSha256).toBe(result.sentSha256);
    expect(result.receivedBytes).toBe(result.bytes);
  });

  function relayTcpPort(): number {
    return (relayOf().listener as unknown as { tcp: { port: number } }).tcp.port;
  }

  it('drops packets forged with a stolen association id, on-path and off-path, without reply and without moving the replay window', async () => {
    const { client, taps, server } = await connectTapped(['127.0.0.2', '127.0.0.3']);
    const transfer = echoTransfer(client, 6_000_000);
    const id = client.association.id;
    const tap = taps.get('127.0.0.2')!;
    const serverPath = server.paths.get(0)!;
    const clientPath = client.association.paths.get(0)!;
    const random = seededRandom(11);
    const forge = (pathId: number, pn: number): Buffer => {
      const body = randomBytes(40 + Math.floor(random() * 1200));
      const out = Buffer.alloc(32 + body.length);
      const len = writeHeader(out, 0, id, pathId, pn);
      body.copy(out, len);
      return out.subarray(0, len + body.length);
    };
    // Packet numbers far ahead: if a forgery could move the window, every real packet
    // after it would count as too old and the transfer would stall.
    const numbers = [2 ** 20, 2 ** 40, Number.MAX_SAFE_INTEGER, 5, 6, 7];
    const decryptBefore = serverPath.stats.decryptFailures;
    for (let i = 0; i < 200; i++) {
      const base = numbers[i % numbers.length]!;
      tap.inject(forge(0, base > 1000 ? base - i : base + i));
    }
    await until(() => serverPath.stats.decryptFailures - decryptBefore >= 150);
    expect(serverPath.replay.largest).toBeLessThan(2 ** 20);
    // The other direction: forged "relay" packets delivered to the client.
    const clientBefore = clientPath.stats.decryptFailures;
    for (let i = 0; i < 200; i++) tap.injectInbound(forge(0, 2 ** 40 + i));
    expect(clientPath.stats.decryptFailures - clientBefore).toBe(200);
    expect(clientPath.replay.largest).toBeLessThan(2 ** 20);
    // Off-path: the id alone, for live and new path ids, gets nothing back.
    const port = Number(client.association.pathSummary()[0]!.remote.split(':')[1]);
    const offPath = Array.from({ length: 60 }, (_, i) => forge(i % 6, i));
    expect((await probeUdp(port, offPath, ATTACKER)).received).toBe(0);
    const overTcp = await probeTcp(relayTcpPort(), tcpRecord(forge(20, 0)), ATTACKER);
    expect(overTcp).toMatchObject({ closedBy: 'peer', received: 0 });

    const result = await transfer;
    expect(result.receivedSha256).toBe(result.sentSha256);
    expect(server.state).toBe('active');
  });

  it('delivers every byte exactly once while packets are replayed, reordered, truncated and bit-flipped in both directions', async () => {
    const { client, taps, server } = await connectTapped(['127.0.0.2', '127.0.0.3']);
    const random = seededRandom(2024);
    const tally = { replayed: 0, reordered: 0, truncated: 0, flipped: 0, headerFlipped: 0 };
    const hostile = (history: Buffer[]): ((p: Buffer) => Buffer[] | undefined) => {
      let held: Buffer | undefined;
      let heldFor = 0;
      return (p) => {
        const out: Buffer[] = [];
        const r = random();
        if (r < 0.03 && history.length > 10) {
          // A packet from earlier on this path, possibly far outside the replay window.
          tally.replayed++;
          out.push(p, history[Math.floor(random() * history.length)]!);
        } else if (r < 0.08 && held === undefined) {
          tally.reordered++;
          held = Buffer.from(p);
          heldFor = 1 + Math.floor(random() * 8);
        } else if (r < 0.11) {
          tally.truncated++;
          out.push(Buffer.from(p.subarray(0, Math.floor(random() * p.length))), p);
        } else if (r < 0.17) {
          // A bit anywhere, or one in the clear header (version, association id, path
          // id, packet number) a third of the time.
          const copy = Buffer.from(p);
          const header = r >= 0.15;
          const bit = Math.floor(random() * (header ? 8 * 12 : copy.length * 8));
          copy[bit >> 3]! ^= 1 << (bit & 7);
          if (header) tally.headerFlipped++;
          else tally.flipped++;
          // The original is lost half of the time (the attacker replaces it).
          out.push(copy);
          if (random() < 0.5) out.push(p);
        } else {
          out.push(p);
        }
        if (held !== undefined && --heldFor < 0) {
          out.push(held);
          held = undefined;
        }
        return out;
      };
    };
    for (const tap of taps.values()) {
      tap.outbound = hostile(tap.sent);
      tap.inbound = hostile(tap.received);
    }
    const result = await echoTransfer(client, 8_000_000);
    expect(result.receivedSha256).toBe(result.sentSha256);
    expect(result.receivedBytes).toBe(result.bytes);
    for (const n of Object.values(tally)) expect(n).toBeGreaterThan(20);
    expect(serverCount(server, 'replaysDropped')).toBeGreaterThan(10);
    expect(serverCount(server, 'decryptFailures')).toBeGreaterThan(20);
    let clientFailures = 0;
    for (const p of client.association.paths.values()) clientFailures += p.stats.decryptFailures;
    expect(clientFailures).toBeGreaterThan(20);
  });

  it('keeps a transfer intact when the attacker corrupts records on a TCP path', async () => {
    const { client, taps } = await connectTapped(['127.0.0.2', '127.0.0.3'], ['udp', 'tcp']);
    const random = seededRandom(99);
    let corrupted = 0;
    const tcpTap = taps.get('127.0.0.3')!;
    expect(tcpTap.subflow.kind).toBe('tcp');
    // The record length stays (TCP would otherwise lose framing); a ciphertext byte changes.
    tcpTap.outbound = (p) => {
      if (tcpTap.counts.sent < 20 || random() >= 0.01) return undefined;
      corrupted++;
      const copy = Buffer.from(p);
      copy[copy.length - 1 - Math.floor(random() * 16)]! ^= 0x40;
      return [copy];
    };
    const result = await echoTransfer(client, 6_000_000);
    expect(corrupted).toBeGreaterThan(0);
    expect(result.receivedSha256).toBe(result.sentSha256);
  });
});
