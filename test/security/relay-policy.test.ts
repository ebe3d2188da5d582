/**
 * SECURITY.md, threat 2 (an Internet host, or a client with a key, using the relay):
 * the relay must not be an open proxy into its own private network. Every target on
 * loopback, RFC 1918, CGNAT, link-local, IPv6 unique-local/loopback/link-local,
 * multicast, the relay's own interface addresses, IPv4-mapped IPv6 in both spellings,
 * and names that resolve to 127.0.0.1, is refused over TCP and UDP, and a listener on
 * the relay's loopback never sees a connection or a datagram, while a transfer on the
 * same association keeps its SHA-256. test/integration/relay-forward.test.ts checks
 * 127.0.0.1 and "localhost" over TCP; this goes through the whole list.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import { ForwardStatus, readForwardReply } from '../../core/relay/forward-reply.js';
import { formatTcpTarget } from '../../core/relay/forward-target.js';
import { StreamDatagramChannel } from '../../core/relay/datagram-channel.js';
import { encodeUdpDatagram } from '../../core/proxy/socks5-encode.js';
import { createLogger } from '../../core/util/log.js';
import { useRelay } from '../support/relay-fixture.js';
import { echoTransfer } from './support/on-path.js';

const quiet = createLogger({ level: 'error' });

/** The relay host's own non-loopback addresses (refused by default as "its own"). */
const OWN = Object.values(networkInterfaces())
  .flatMap((l) => l ?? [])
  .filter((i) => !i.internal)
  .map((i) => i.address.split('%')[0]!);

const LITERALS = [
  '127.0.0.1',
  '127.0.0.2',
  '127.255.255.254',
  '0.0.0.0',
  '10.0.0.1',
  '172.16.0.1',
  '172.31.255.254',
  '192.168.1.1',
  '169.254.169.254', // cloud metadata service
  '100.64.0.1',
  '224.0.0.1',
  '255.255.255.255',
  '::1',
  '::',
  'fd00::1',
  'fc00::1',
  'fe80::1',
  'ff02::1',
  '::ffff:127.0.0.1',
  '::ffff:7f00:1',
  '::ffff:10.0.0.1',
  '::ffff:a9fe:a9fe',
  ...OWN,
];
/** Names: the resolver turns each into 127.0.0.1 (or ::1); the check runs on the answer. */
const NAMES = ['localhost', '127.1', '2130706433', '0x7f000001', '0177.0.0.1'];

describe('the relay is not an open proxy into its own network', () => {
  const relayOf = useRelay();
  let client: BraidClient;
  let tcpProbe: net.Server;
  let udpProbe: dgram.Socket;
  let tcpAccepted = 0;
  let udpReceived = 0;

  beforeAll(async () => {
    // Dual-stack listeners on the relay host: any connection that got through shows here.
    tcpProbe = net.createServer((s) => {
      tcpAccepted++;
      s.destroy();
    });
    tcpProbe.listen(0, '::');
    await once(tcpProbe, 'listening');
    udpProbe = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    udpProbe.on('message', () => udpReceived++);
    udpProbe.bind(0, '::');
    await once(udpProbe, 'listening');
    const connected = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      logger: quiet,
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    client = connected.client;
  });
  afterAll(async () => {
    client.close();
    udpProbe.close();
    await new Promise<void>((r) => tcpProbe.close(() => r()));
  });

  it('refuses TCP forwarding to every private, loopback, link-local, own and mapped address, and to names that resolve to loopback', async () => {
    const port = (tcpProbe.address() as net.AddressInfo).port;
    const transfer = echoTransfer(client, 4_000_000);
    const outcomes = await Promise.all(
      [...LITERALS, ...NAMES].map(async (host) => {
        const stream = client.openStream({ target: formatTcpTarget(host, port) });
        const reply = await readForwardReply(stream, 10_000);
        stream.destroy();
        return { host, status: reply.status, text: reply.text };
      }),
    );
    for (const o of outcomes) {
      expect(o, o.host).toMatchObject({ status: ForwardStatus.notAllowed });
    }
    const resolved = outcomes.filter((o) => NAMES.includes(o.host));
    for (const o of resolved) expect(o.text, o.host).toContain('resolves to');
    expect(tcpAccepted).toBe(0);
    const result = await transfer;
    expect(result.receivedSha256).toBe(result.sentSha256);
  });

  it('drops UDP datagrams to the same destinations; none reaches the relay host', async () => {
    const port = udpProbe.address().port;
    const transfer = echoTransfer(client, 4_000_000);
    const stream = client.openStream({ target: 'udp' });
    expect((await readForwardReply(stream, 10_000)).status).toBe(ForwardStatus.ok);
    const channel = new StreamDatagramChannel(stream, quiet);
    for (const host of [...LITERALS, ...NAMES]) {
      for (let i = 0; i < 3; i++)
        channel.send(encodeUdpDatagram({ host, port }, Buffer.from(host)));
    }
    // Names resolve asynchronously at the relay; give every datagram time to be judged.
    await new Promise((r) => setTimeout(r, 1000));
    expect(udpReceived).toBe(0);
    channel.close();
    const result = await transfer;
    expect(result.receivedSha256).toBe(result.sentSha256);
  });
});
