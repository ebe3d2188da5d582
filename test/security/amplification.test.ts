/**
 * SECURITY.md, threat 2: an Internet host must not be able to use the relay to
 * amplify traffic toward an address that never proved it can receive (RFC 9000 §8.1
 * sets the same bound for QUIC: three times what was received). Each probe comes from
 * its own source address, sends unauthenticated traffic to one port, and counts what
 * comes back, while a legitimate transfer runs on an association of the same relay.
 *
 * UDP has no handshake, so the bound applies to every datagram: the relay answers
 * nothing that does not authenticate. TCP validates the address with its handshake
 * before any payload flows (a spoofed source never completes it), so on the TCP data
 * port and the control port the bound is checked for input that stops short of a
 * complete TLS handshake, and the full TLS flight is measured and reported.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import { createLogger } from '../../core/util/log.js';
import { writeHeader } from '../../core/wire/packet-header.js';
import { seededRandom } from '../support/impaired-subflow.js';
import { useRelay } from '../support/relay-fixture.js';
import { echoTransfer, probeTcp, probeUdp, type ProbeBytes } from './support/on-path.js';

const quiet = createLogger({ level: 'error' });
const LIMIT = 3;

function junk(random: () => number, n: number, max: number): Buffer[] {
  return Array.from({ length: n }, () =>
    Buffer.from(
      Array.from({ length: 1 + Math.floor(random() * max) }, () => Math.floor(random() * 256)),
    ),
  );
}

/** A TLS 1.3 client on a counted TCP socket: bytes each way until `stopAfter` or the server flight. */
function tlsProbe(
  port: number,
  from: string,
  stopAfter: 'server-flight' | 'nothing',
): Promise<ProbeBytes> {
  return new Promise((resolve) => {
    const raw = net.connect({ host: '127.0.0.1', port, localAddress: from });
    raw.on('error', () => undefined);
    const done = (): void => {
      raw.destroy();
      resolve({ sent: raw.bytesWritten, received: raw.bytesRead });
    };
    raw.once('connect', () => {
      if (stopAfter === 'nothing') {
        setTimeout(done, 300);
        return;
      }
      const socket = tls.connect({ socket: raw, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
      socket.on('error', () => undefined);
      // Stop shortly after the handshake: no HELLO follows.
      socket.once('secureConnect', () => setTimeout(done, 50));
      setTimeout(done, 2000);
    });
  });
}

describe('no amplification toward unvalidated addresses', () => {
  const relayOf = useRelay();
  let client: BraidClient;
  beforeAll(async () => {
    const connected = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2'],
      logger: quiet,
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    client = connected.client;
  });
  afterAll(() => client.close());

  it('sends nothing back for unauthenticated traffic to the UDP, TCP data and control ports (bytes out <= 3x bytes in per source)', async () => {
    const transfer = echoTransfer(client, 4_000_000);
    const random = seededRandom(31);
    const listener = relayOf().listener;
    const udpPort = Number(client.association.pathSummary()[0]!.remote.split(':')[1]);
    const tcpPort = (listener as unknown as { tcp: { port: number } }).tcp.port;
    const id = client.association.id;
    const withId = (pathId: number, body: Buffer): Buffer => {
      const out = Buffer.alloc(32 + body.length);
      const len = writeHeader(out, 0, id, pathId, Math.floor(random() * 1e6));
      body.copy(out, len);
      return out.subarray(0, len + body.length);
    };
    const measured: Record<string, ProbeBytes> = {};

    // UDP: random bytes, one-byte datagrams, and packets naming the live association.
    measured['udp junk'] = await probeUdp(udpPort, junk(random, 300, 1400), '127.0.0.20');
    measured['udp tiny'] = await probeUdp(udpPort, junk(random, 300, 1), '127.0.0.21');
    measured['udp stolen id'] = await probeUdp(
      udpPort,
      junk(random, 200, 300).map((b, i) => withId(i % 4, b)),
      '127.0.0.22',
    );
    // TCP data port: junk, a huge record length, a forged JOIN record, nothing at all.
    const record = (body: Buffer): Buffer => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      return Buffer.concat([head, body]);
    };
    measured['tcp data junk'] = await probeTcp(tcpPort, randomBytes(4096), '127.0.0.23');
    measured['tcp data stolen id'] = await probeTcp(
      tcpPort,
      record(withId(9, randomBytes(100))),
      '127.0.0.24',
    );
    measured['tcp data big length'] = await probeTcp(
      tcpPort,
      Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]),
      '127.0.0.25',
    );
    // Control port: junk instead of TLS, a truncated ClientHello, a connection that says nothing.
    measured['control junk'] = await probeTcp(listener.port, randomBytes(2048), '127.0.0.26');
    measured['control partial hello'] = await probeTcp(
      listener.port,
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]),
      '127.0.0.27',
      800,
    );
    measured['control silent'] = await tlsProbe(listener.port, '127.0.0.28', 'nothing');

    for (const [name, m] of Object.entries(measured)) {
      expect(m.received, `${name}: ${m.received} bytes out for ${m.sent} in`).toBeLessThanOrEqual(
        LIMIT * m.sent,
      );
    }
    // UDP and the TCP data port never answer at all.
    for (const name of Object.keys(measured).filter((n) => !n.startsWith('control')))
      expect(measured[name]!.received, name).toBe(0);

    // For the record (SECURITY.md): a full TLS 1.3 handshake, address validated by TCP.
    const full = await tlsProbe(listener.port, '127.0.0.29', 'server-flight');
    console.log(
      `amplification, bytes out/in per source: ${Object.entries({
        ...measured,
        'control full TLS (validated)': full,
      })
        .map(([n, m]) => `${n} ${m.received}/${m.sent}`)
        .join(', ')}`,
    );
    expect(full.received).toBeGreaterThan(0);

    const result = await transfer;
    expect(result.receivedSha256).toBe(result.sentSha256);
  });
});
