import net from 'node:net';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { TransportKind } from '../../core/wire/frame.js';
import { RecordDecoder } from '../../core/wire/record-decoder.js';
import { BraidError } from '../../core/util/errors.js';
import { createMemoryLogger } from '../../core/util/log.js';
import type { Subflow } from '../../core/transport/subflow.js';
import { openTcpSubflow, TCP_DEFAULT_MAX_PACKET } from '../../core/transport/tcp-subflow.js';
import { TcpListener } from '../../core/transport/tcp-listener.js';
import {
  isLoopbackAddress,
  openUdpSubflow,
  udpMaxPayloadFor,
  UDP_DEFAULT_MAX_PAYLOAD,
  UDP_LOOPBACK_MAX_PAYLOAD,
} from '../../core/transport/udp-subflow.js';
import { UdpEndpoint } from '../../core/transport/udp-endpoint.js';
import { tick, until } from '../support/wait.js';

/** An address that is on no interface of this host (TEST-NET-3, RFC 5737). */
const FOREIGN_ADDRESS = '203.0.113.77';

/** Records what arrives on a subflow and how it closes. */
function watch(subflow: Subflow): {
  packets: Buffer[];
  closes: Array<BraidError | undefined>;
  drains: number;
} {
  const seen = { packets: [] as Buffer[], closes: [] as Array<BraidError | undefined>, drains: 0 };
  // Copies: a TCP packet may be a view of a socket chunk.
  subflow.onPacket = (p) => seen.packets.push(Buffer.from(p));
  subflow.onClose = (e) => seen.closes.push(e);
  subflow.onDrain = () => seen.drains++;
  return seen;
}

/**
 * A server on 127.0.0.1 and a way to open client subflows to it from a given local
 * address, returning the client and the server's subflow for the same path. The UDP
 * server does what the session layer does with an endpoint: the first datagram from
 * an unknown source (a JOIN, here "join") makes a subflow, later ones feed it.
 */
interface Harness {
  readonly kind: TransportKind;
  /** Whether the transport keeps packets in order (tests on loopback rely on it only then). */
  readonly ordered: boolean;
  readonly port: number;
  connect(localAddress: string): Promise<{ client: Subflow; server: Subflow }>;
  close(): Promise<void>;
}

async function udpHarness(): Promise<Harness> {
  const endpoint = await UdpEndpoint.bind('127.0.0.1', 0);
  const paths = new Map<string, Subflow>();
  const waiting = new Map<string, (s: Subflow) => void>();
  endpoint.onDatagram = (packet, address, port) => {
    const key = `${address}:${port}`;
    const known = paths.get(key);
    if (known !== undefined) {
      if (!known.closed) known.onPacket(packet);
      return;
    }
    if (packet.toString() !== 'join') return;
    const subflow = endpoint.subflowFor(address, port);
    paths.set(key, subflow);
    waiting.get(key)?.(subflow);
  };
  return {
    kind: 'udp',
    ordered: false,
    port: endpoint.port,
    async connect(localAddress) {
      const client = await openUdpSubflow({
        localAddress,
        remoteAddress: '127.0.0.1',
        remotePort: endpoint.port,
      });
      const server = new Promise<Subflow>((resolve) =>
        waiting.set(`${client.localAddress}:${client.localPort}`, resolve),
      );
      client.send(Buffer.from('join'));
      return { client, server: await server };
    },
    close: () => Promise.resolve(endpoint.close()),
  };
}

async function tcpHarness(): Promise<Harness> {
  const listener = await TcpListener.listen('127.0.0.1', 0);
  const waiting = new Map<number, (s: Subflow) => void>();
  const early = new Map<number, Subflow>();
  listener.onSubflow = (subflow) => {
    const resolve = waiting.get(subflow.remotePort);
    if (resolve !== undefined) resolve(subflow);
    else early.set(subflow.remotePort, subflow);
  };
  return {
    kind: 'tcp',
    ordered: true,
    port: listener.port,
    async connect(localAddress) {
      const client = await openTcpSubflow({
        localAddress,
        remoteAddress: '127.0.0.1',
        remotePort: listener.port,
      });
      const server =
        early.get(client.localPort) ??
        (await new Promise<Subflow>((resolve) => waiting.set(client.localPort, resolve)));
      return { client, server };
    },
    close: () => listener.close(),
  };
}

const transports = [
  { kind: 'udp', make: udpHarness },
  { kind: 'tcp', make: tcpHarness },
] as const;

/** A packet that names its index and whose bytes are checkable: index, length, pattern. */
function numbered(index: number, size: number): Buffer {
  const p = Buffer.alloc(Math.max(size, 8));
  p.writeUInt32BE(index, 0);
  p.writeUInt32BE(p.length, 4);
  for (let i = 8; i < p.length; i++) p[i] = (index * 31 + i) & 0xff;
  return p;
}

function intact(p: Buffer): boolean {
  if (p.length < 8 || p.readUInt32BE(4) !== p.length) return false;
  const index = p.readUInt32BE(0);
  for (let i = 8; i < p.length; i++) if (p[i] !== ((index * 31 + i) & 0xff)) return false;
  return true;
}

const hex = (packets: Buffer[], ordered: boolean): string[] => {
  const list = packets.map((p) => p.toString('hex'));
  return ordered ? list : list.sort();
};

describe.each(transports)('transport compliance: $kind', ({ kind, make }) => {
  let harness: Harness | undefined;
  const opened: Subflow[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) s.close();
    await harness?.close();
    harness = undefined;
  });
  async function connect(
    localAddress = '127.0.0.2',
  ): Promise<{ client: Subflow; server: Subflow }> {
    harness ??= await make();
    const pair = await harness.connect(localAddress);
    opened.push(pair.client);
    return pair;
  }

  it('leaves from the local address it was bound to, and the peer sees that address and port', async () => {
    const a = await connect('127.0.0.2');
    const b = await connect('127.0.0.3');
    for (const [pair, address] of [
      [a, '127.0.0.2'],
      [b, '127.0.0.3'],
    ] as const) {
      expect(pair.client.kind).toBe(kind);
      expect(pair.server.kind).toBe(kind);
      expect(pair.client.localAddress).toBe(address);
      expect(pair.client.localPort).toBeGreaterThan(0);
      expect(pair.server.remoteAddress).toBe(address);
      expect(pair.server.remotePort).toBe(pair.client.localPort);
      expect(pair.server.localAddress).toBe('127.0.0.1');
      expect(pair.server.localPort).toBe(harness!.port);
      expect(pair.client.remoteAddress).toBe('127.0.0.1');
      expect(pair.client.remotePort).toBe(harness!.port);
    }
    // Two paths from two addresses stay apart at the server.
    const seenA = watch(a.server);
    const seenB = watch(b.server);
    a.client.send(Buffer.from('via .2'));
    b.client.send(Buffer.from('via .3'));
    await until(() => seenA.packets.length === 1 && seenB.packets.length === 1, 'both paths');
    expect(seenA.packets[0]!.toString()).toBe('via .2');
    expect(seenB.packets[0]!.toString()).toBe('via .3');
  });

  it('delivers each packet whole and intact, from empty to maxPacketSize, in both directions', async () => {
    const { client, server } = await connect();
    const atServer = watch(server);
    const atClient = watch(client);
    const sizes = [0, 1, 3, 4, 5, 1200, 1452, 16384, client.maxPacketSize];
    const sent = sizes.map((n) => randomBytes(n));
    for (const p of sent) {
      expect(client.send(p)).toBe(true);
      // One at a time: a 64 KiB datagram burst could overflow a small default rcvbuf.
      await until(() => atServer.packets.length === sent.indexOf(p) + 1, `packet of ${p.length}`);
    }
    expect(hex(atServer.packets, true)).toEqual(hex(sent, true));
    const back = sizes.map((n) => randomBytes(Math.min(n, server.maxPacketSize)));
    for (const p of back) server.send(p);
    await until(() => atClient.packets.length === back.length, 'replies');
    expect(hex(atClient.packets, harness!.ordered)).toEqual(hex(back, harness!.ordered));
  });

  it('sends the pieces given to sendParts as one packet', async () => {
    const { client, server } = await connect();
    const atServer = watch(server);
    const atClient = watch(client);
    const parts = [randomBytes(11), randomBytes(1000), randomBytes(16)];
    expect(client.sendParts(parts)).toBe(true);
    expect(server.sendParts([Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cd')])).toBe(true);
    await until(() => atServer.packets.length === 1 && atClient.packets.length === 1, 'parts');
    expect(atServer.packets[0]!.equals(Buffer.concat(parts))).toBe(true);
    expect(atClient.packets[0]!.toString()).toBe('abcd');
  });

  it('keeps the packets of a burst sent in one tick apart and intact', async () => {
    const { client, server } = await connect();
    const atServer = watch(server);
    const sent: Buffer[] = [];
    for (let i = 0; i < 100; i++) sent.push(numbered(i, 8 + ((i * 397) % 1500)));
    for (let i = 0; i < sent.length; i++) {
      if (i % 3 === 0) client.sendParts([sent[i]!.subarray(0, 5), sent[i]!.subarray(5)]);
      else client.send(sent[i]!);
    }
    await until(() => atServer.packets.length === sent.length, 'the burst');
    expect(atServer.packets.every(intact)).toBe(true);
    expect(hex(atServer.packets, harness!.ordered)).toEqual(hex(sent, harness!.ordered));
  });

  it('holds what it takes between cork and uncork, then sends it all whole, in both directions', async () => {
    const { client, server } = await connect();
    const atServer = watch(server);
    const atClient = watch(client);
    // What a flush makes (runs of full packets, a short end, an ACK alone), and sizes
    // past the run size, which must not be cut at it.
    const sizes = [
      1452, 1452, 1452, 1452, 700, 80, 1452, 1452, 16384, 1452, 1452, 1452, 9000, 1452,
    ];
    for (const [from, at] of [
      [client, atServer],
      [server, atClient],
    ] as const) {
      const sent = sizes.map((n, i) => numbered(i, Math.min(n, from.maxPacketSize)));
      from.cork();
      for (let i = 0; i < sent.length; i++) {
        const ok =
          i % 2 === 0
            ? from.send(sent[i]!)
            : from.sendParts([sent[i]!.subarray(0, 9), sent[i]!.subarray(9)]);
        expect(ok).toBe(true);
      }
      await tick(30);
      expect(at.packets).toEqual([]);
      from.uncork();
      await until(() => at.packets.length === sent.length, 'the corked packets');
      expect(at.packets.every(intact)).toBe(true);
      expect(hex(at.packets, harness!.ordered)).toEqual(hex(sent, harness!.ordered));
    }
    // A close sends what is held first (an association's last packets are its close),
    // and nothing leaves afterwards.
    client.cork();
    client.send(numbered(99, 1452));
    client.close();
    expect(client.send(numbered(100, 1452))).toBe(false);
    client.uncork();
    await until(() => atServer.packets.length === sizes.length + 1, 'the held packet');
    await tick(30);
    expect(atServer.packets.map((p) => p.readUInt32BE(0))).toContain(99);
    expect(atServer.packets.length).toBe(sizes.length + 1);
  });

  it('reports its own close to its owner once, without an error, and refuses to send afterwards', async () => {
    const { client, server } = await connect();
    const atClient = watch(client);
    client.close();
    client.close();
    expect(atClient.closes).toEqual([undefined]);
    expect(client.closed).toBe(true);
    expect(client.send(Buffer.from('late'))).toBe(false);
    expect(client.sendParts([Buffer.from('late')])).toBe(false);
    expect(client.queuedBytes).toBe(0);
    // Nothing is delivered to a closed subflow.
    server.send(Buffer.from('to a closed subflow'));
    await tick(50);
    expect(atClient.packets).toEqual([]);
    expect(atClient.closes).toEqual([undefined]);
  });

  it('closes the server side of a path the same way', async () => {
    const { server } = await connect();
    const atServer = watch(server);
    server.close();
    server.close();
    expect(atServer.closes).toEqual([undefined]);
    expect(server.closed).toBe(true);
    expect(server.send(Buffer.from('late'))).toBe(false);
  });

  it('refuses to open from an address that is not on this host, with BRAID_ERR_TRANSPORT', async () => {
    harness ??= await make();
    const open = kind === 'udp' ? openUdpSubflow : openTcpSubflow;
    await expect(
      open({ localAddress: FOREIGN_ADDRESS, remoteAddress: '127.0.0.1', remotePort: harness.port }),
    ).rejects.toMatchObject({ code: 'BRAID_ERR_TRANSPORT' });
  });

  it('refuses a host name or a bad port with BRAID_ERR_USAGE instead of looking it up', async () => {
    const open = kind === 'udp' ? openUdpSubflow : openTcpSubflow;
    for (const [remoteAddress, remotePort] of [
      ['localhost', 4000],
      ['127.0.0.1', 0],
      ['127.0.0.1', 70000],
    ] as const) {
      await expect(
        open({ localAddress: '127.0.0.2', remoteAddress, remotePort }),
      ).rejects.toMatchObject({ code: 'BRAID_ERR_USAGE' });
    }
  });
});

describe('UDP subflows and endpoints', () => {
  it('stays open and counts the ICMP error when the peer is not listening (ECONNREFUSED)', async () => {
    const probe = await UdpEndpoint.bind('127.0.0.1', 0);
    const port = probe.port;
    probe.close();
    const subflow = await openUdpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: port,
    });
    const seen = watch(subflow);
    for (let i = 0; i < 3; i++) {
      expect(subflow.send(Buffer.from('anyone?'))).toBe(true);
      await tick(10);
    }
    await until(() => subflow.icmpErrors > 0, 'an ICMP error');
    expect(subflow.lastIcmpError).toBe('ECONNREFUSED');
    expect(subflow.closed).toBe(false);
    expect(seen.closes).toEqual([]);
    subflow.close();
  });

  it('delivers only datagrams from the connected peer', async () => {
    const endpoint = await UdpEndpoint.bind('127.0.0.1', 0);
    const subflow = await openUdpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: endpoint.port,
    });
    const seen = watch(subflow);
    const stranger = dgram.createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.3', r));
    stranger.send(Buffer.from('stranger'), subflow.localPort, '127.0.0.2');
    endpoint.subflowFor('127.0.0.2', subflow.localPort).send(Buffer.from('peer'));
    await until(() => seen.packets.length === 1, 'the peer datagram');
    await tick(30);
    expect(seen.packets.map((p) => p.toString())).toEqual(['peer']);
    stranger.close();
    subflow.close();
    endpoint.close();
  });

  it('reports each datagram with its source, and routes replies through the shared socket', async () => {
    const endpoint = await UdpEndpoint.bind('127.0.0.1', 0);
    const got: Array<[string, string, number]> = [];
    endpoint.onDatagram = (p, address, port) => got.push([p.toString(), address, port]);
    const a = await openUdpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: endpoint.port,
    });
    const b = await openUdpSubflow({
      localAddress: '127.0.0.3',
      remoteAddress: '127.0.0.1',
      remotePort: endpoint.port,
    });
    a.send(Buffer.from('a'));
    b.send(Buffer.from('b'));
    await until(() => got.length === 2, 'two datagrams');
    expect(got.sort()).toEqual([
      ['a', '127.0.0.2', a.localPort],
      ['b', '127.0.0.3', b.localPort],
    ]);
    const atB = watch(b);
    const atA = watch(a);
    endpoint.subflowFor('127.0.0.3', b.localPort).send(Buffer.from('to b'));
    await until(() => atB.packets.length === 1, 'the reply');
    expect(atB.packets[0]!.toString()).toBe('to b');
    expect(atA.packets).toEqual([]);
    a.close();
    b.close();
    endpoint.close();
  });

  it('closes its open virtual subflows once when the endpoint closes, and forgets closed ones', async () => {
    const endpoint = await UdpEndpoint.bind('127.0.0.1', 0);
    const one = endpoint.subflowFor('127.0.0.2', 40000);
    const two = endpoint.subflowFor('127.0.0.3', 40001);
    const seenOne = watch(one);
    const seenTwo = watch(two);
    expect(endpoint.subflowCount).toBe(2);
    one.close();
    expect(endpoint.subflowCount).toBe(1);
    expect(endpoint.closed).toBe(false);
    endpoint.close();
    endpoint.close();
    expect(seenOne.closes).toEqual([undefined]);
    expect(seenTwo.closes).toEqual([undefined]);
    expect(two.closed).toBe(true);
    expect(two.send(Buffer.from('x'))).toBe(false);
    expect(endpoint.subflowCount).toBe(0);
  });

  it('turns a destination node refuses (port 0 from a forged source) into a typed close of that subflow, not a throw', async () => {
    const endpoint = await UdpEndpoint.bind('127.0.0.1', 0);
    const bad = endpoint.subflowFor('127.0.0.2', 0);
    const named = endpoint.subflowFor('localhost', 4000);
    const seenBad = watch(bad);
    const seenNamed = watch(named);
    expect(bad.send(Buffer.from('x'))).toBe(false);
    expect(named.sendParts([Buffer.from('x')])).toBe(false);
    expect(seenBad.closes.map((e) => e?.code)).toEqual(['BRAID_ERR_USAGE']);
    expect(seenNamed.closes.map((e) => e?.code)).toEqual(['BRAID_ERR_USAGE']);
    // The endpoint itself keeps working.
    const client = await openUdpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: endpoint.port,
    });
    const atClient = watch(client);
    endpoint.subflowFor('127.0.0.2', client.localPort).send(Buffer.from('still here'));
    await until(() => atClient.packets.length === 1, 'a datagram after the bad one');
    expect(endpoint.closed).toBe(false);
    client.close();
    endpoint.close();
  });

  it('asks for large socket buffers and logs what the kernel granted', async () => {
    const { logger, lines } = createMemoryLogger('debug');
    const endpoint = await UdpEndpoint.bind('127.0.0.1', 0);
    const subflow = await openUdpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: endpoint.port,
      logger,
    });
    expect(subflow.socketBuffers.recv).toBeGreaterThan(0);
    const line = lines.find((l) => String(l.msg).startsWith('UDP socket buffers'));
    expect(line).toMatchObject({ grantedRecv: subflow.socketBuffers.recv });
    subflow.close();
    endpoint.close();
  });

  it('checks that the local address belongs to the named device', async () => {
    const endpoint = await UdpEndpoint.bind('127.0.0.1', 0);
    const base = {
      localAddress: '127.0.0.1',
      remoteAddress: '127.0.0.1',
      remotePort: endpoint.port,
    };
    const ok = await openUdpSubflow({ ...base, device: 'lo' });
    expect(ok.localAddress).toBe('127.0.0.1');
    ok.close();
    await expect(openUdpSubflow({ ...base, device: 'no-such-if0' })).rejects.toMatchObject({
      code: 'BRAID_ERR_TRANSPORT',
    });
    endpoint.close();
  });

  it('carries up to 65000 bytes per datagram on loopback and an Ethernet-sized payload elsewhere', async () => {
    expect(udpMaxPayloadFor('127.0.0.2')).toBe(UDP_LOOPBACK_MAX_PAYLOAD);
    expect(udpMaxPayloadFor('::1')).toBe(UDP_LOOPBACK_MAX_PAYLOAD);
    expect(udpMaxPayloadFor('::ffff:127.0.0.1')).toBe(UDP_LOOPBACK_MAX_PAYLOAD);
    expect(udpMaxPayloadFor('192.168.1.10')).toBe(UDP_DEFAULT_MAX_PAYLOAD);
    expect(udpMaxPayloadFor('2001:db8::1')).toBe(UDP_DEFAULT_MAX_PAYLOAD);
    expect(isLoopbackAddress('128.0.0.1')).toBe(false);
    const endpoint = await UdpEndpoint.bind('::1', 0);
    const got: Buffer[] = [];
    endpoint.onDatagram = (p) => got.push(p);
    const subflow = await openUdpSubflow({
      localAddress: '::1',
      remoteAddress: '::1',
      remotePort: endpoint.port,
    });
    expect(subflow.maxPacketSize).toBe(UDP_LOOPBACK_MAX_PAYLOAD);
    const big = randomBytes(subflow.maxPacketSize);
    subflow.send(big);
    await until(() => got.length === 1, 'a 65000-byte datagram over ::1');
    expect(got[0]!.equals(big)).toBe(true);
    subflow.close();
    endpoint.close();
  });
});

describe('TCP subflows and listeners', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function listener(): Promise<TcpListener> {
    const l = await TcpListener.listen('127.0.0.1', 0);
    cleanup.push(() => l.close());
    return l;
  }

  it('tells the peer when one side closes: its owner gets BRAID_ERR_PATH_FAILED once', async () => {
    const l = await listener();
    const accepted = new Promise<Subflow>((r) => (l.onSubflow = r));
    const client = await openTcpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: l.port,
    });
    const server = await accepted;
    const atServer = watch(server);
    // Sent just before close(): still delivered, the close flushes it.
    client.send(Buffer.from('last words'));
    client.close();
    await until(() => atServer.closes.length === 1, 'the peer close');
    expect(atServer.packets.map((p) => p.toString())).toEqual(['last words']);
    expect(atServer.closes[0]).toBeInstanceOf(BraidError);
    expect(atServer.closes[0]!.code).toBe('BRAID_ERR_PATH_FAILED');
    expect(String(atServer.closes[0]!.path)).toContain('127.0.0.2');
    await tick(20);
    expect(atServer.closes.length).toBe(1);
  });

  it('rejects random garbage with a typed error on that connection and keeps accepting others', async () => {
    const l = await listener();
    const closes: Array<BraidError | undefined> = [];
    l.onSubflow = (s) => {
      s.onClose = (e) => closes.push(e);
    };
    for (let i = 0; i < 20; i++) {
      const garbage = randomBytes(4 + ((i * 211) % 3000));
      // A declared length of 16 MiB or more: always over the cap.
      garbage[0] = 1 + (garbage[0]! % 255);
      const raw = net.connect({ host: '127.0.0.1', port: l.port, localAddress: '127.0.0.3' });
      raw.on('error', () => undefined);
      raw.end(garbage);
    }
    await until(() => closes.length === 20, 'twenty rejections');
    for (const e of closes) {
      expect(e).toBeInstanceOf(BraidError);
      expect(e!.code).toBe('BRAID_ERR_WIRE_TOO_LARGE');
      expect(String(e!.path)).toContain('127.0.0.3');
    }
    // A record that is cut short by the peer closing is a path failure, not a packet.
    const packets: Buffer[] = [];
    const cut = new Promise<BraidError | undefined>((resolve) => {
      l.onSubflow = (s) => {
        s.onPacket = (p) => packets.push(p);
        s.onClose = resolve;
      };
    });
    const raw = net.connect({ host: '127.0.0.1', port: l.port });
    raw.on('error', () => undefined);
    raw.end(Buffer.from([0, 0, 0, 100, 1, 2, 3]));
    expect(await cut).toMatchObject({ code: 'BRAID_ERR_PATH_FAILED' });
    expect(packets).toEqual([]);
    // And the listener still serves a real subflow.
    const accepted = new Promise<Subflow>((r) => (l.onSubflow = r));
    const client = await openTcpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: l.port,
    });
    cleanup.push(() => client.close());
    const atServer = watch(await accepted);
    client.send(Buffer.from('fine'));
    await until(() => atServer.packets.length === 1, 'a packet after the garbage');
  });

  it('refuses to send a packet larger than maxPacketSize by closing with BRAID_ERR_USAGE', async () => {
    const l = await listener();
    l.onSubflow = () => undefined;
    const client = await openTcpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: l.port,
    });
    const seen = watch(client);
    expect(client.maxPacketSize).toBe(TCP_DEFAULT_MAX_PACKET);
    expect(client.send(Buffer.alloc(client.maxPacketSize + 1))).toBe(false);
    expect(seen.closes.map((e) => e?.code)).toEqual(['BRAID_ERR_USAGE']);
  });

  it('returns false from send once more than queueLimit bytes wait, and calls onDrain when the peer reads again', async () => {
    // The peer is a plain socket that stops reading, so the kernel buffers fill first
    // and then the subflow's own queue.
    let peer: net.Socket | undefined;
    const decoder = new RecordDecoder(TCP_DEFAULT_MAX_PACKET);
    let records = 0;
    const server = net.createServer((s) => {
      peer = s;
      s.pause();
      s.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        for (let r = decoder.next(); r !== undefined; r = decoder.next()) {
          if (r instanceof BraidError) throw r;
          if (!intact(r)) throw new Error('damaged record');
          records++;
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => server.close(r)));
    const queueLimit = 64 * 1024;
    const client = await openTcpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: (server.address() as net.AddressInfo).port,
      queueLimit,
    });
    cleanup.push(() => client.close());
    cleanup.push(() => peer?.destroy());
    await until(() => peer !== undefined, 'the accept');
    const seen = watch(client);
    let sent = 0;
    let refused = false;
    // One packet per turn of the event loop, so each leaves the cork and meets the kernel.
    while (!refused && sent < 20_000) {
      refused = !client.send(numbered(sent, 16 * 1024));
      sent++;
      if (!refused) expect(client.queuedBytes).toBeLessThanOrEqual(queueLimit);
      if (!refused) await new Promise((r) => setImmediate(r));
    }
    expect(refused).toBe(true);
    expect(client.queuedBytes).toBeGreaterThan(queueLimit);
    // Refused by the first packet that took the queue over the limit.
    expect(client.queuedBytes).toBeLessThanOrEqual(queueLimit + 4 + 16 * 1024);
    await tick(100);
    expect(seen.drains).toBe(0);
    peer!.resume();
    await until(() => seen.drains === 1, 'onDrain');
    expect(client.queuedBytes).toBe(0);
    expect(client.send(numbered(sent, 100))).toBe(true);
    sent++;
    await until(() => records === sent, 'every record at the peer');
    expect(seen.closes).toEqual([]);
  });

  it('closes the connections it accepted that are still open when the listener closes', async () => {
    const l = await TcpListener.listen('127.0.0.1', 0);
    const accepted = new Promise<Subflow>((r) => (l.onSubflow = r));
    const client = await openTcpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.1',
      remotePort: l.port,
    });
    const atClient = watch(client);
    const atServer = watch(await accepted);
    expect(l.subflowCount).toBe(1);
    await l.close();
    expect(atServer.closes).toEqual([undefined]);
    await until(() => atClient.closes.length === 1, 'the client to see the close');
    expect(atClient.closes[0]!.code).toBe('BRAID_ERR_PATH_FAILED');
    expect(l.subflowCount).toBe(0);
  });

  it('fails to connect to a port nobody listens on with BRAID_ERR_TRANSPORT', async () => {
    const l = await TcpListener.listen('127.0.0.1', 0);
    const port = l.port;
    await l.close();
    await expect(
      openTcpSubflow({ localAddress: '127.0.0.2', remoteAddress: '127.0.0.1', remotePort: port }),
    ).rejects.toMatchObject({ code: 'BRAID_ERR_TRANSPORT' });
  });

  it('reports the exact local address of a connection accepted on a wildcard listener', async () => {
    const l = await TcpListener.listen('0.0.0.0', 0);
    cleanup.push(() => l.close());
    const accepted = new Promise<Subflow>((r) => (l.onSubflow = r));
    const client = await openTcpSubflow({
      localAddress: '127.0.0.2',
      remoteAddress: '127.0.0.3',
      remotePort: l.port,
    });
    cleanup.push(() => client.close());
    const server = await accepted;
    expect(server.localAddress).toBe('127.0.0.3');
    expect(server.remoteAddress).toBe('127.0.0.2');
    expect(client.localAddress).toBe('127.0.0.2');
  });
});
