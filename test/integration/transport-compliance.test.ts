import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Subflow } from '../../core/transport/subflow.js';
import { openTcpSubflow } from '../../core/transport/tcp-subflow.js';
import { TcpListener } from '../../core/transport/tcp-listener.js';
import { openUdpSubflow } from '../../core/transport/udp-subflow.js';
import { UdpEndpoint } from '../../core/transport/udp-endpoint.js';

/** A client subflow from 127.0.0.2 and the server's view of it, for either transport. */
interface Pair {
  client: Subflow;
  server: Subflow;
  /** What the server side received, in order. */
  received: Buffer[];
  close(): Promise<void>;
}

async function udpPair(): Promise<Pair> {
  const endpoint = await UdpEndpoint.bind('127.0.0.1', 0);
  const received: Buffer[] = [];
  let server: Subflow | undefined;
  const ready = new Promise<void>((resolve) => {
    endpoint.onDatagram = (packet, address, port) => {
      server ??= endpoint.subflowFor(address, port);
      received.push(packet);
      resolve();
    };
  });
  const client = await openUdpSubflow({
    localAddress: '127.0.0.2',
    remoteAddress: '127.0.0.1',
    remotePort: endpoint.port,
  });
  client.send(Buffer.from('hello'));
  await ready;
  received.length = 0;
  return { client, server: server!, received, close: () => Promise.resolve(endpoint.close()) };
}

async function tcpPair(): Promise<Pair> {
  const listener = await TcpListener.listen('127.0.0.1', 0);
  const received: Buffer[] = [];
  const accepted = new Promise<Subflow>((resolve) => {
    listener.onSubflow = (s) => {
      s.onPacket = (p) => received.push(p);
      resolve(s);
    };
  });
  const client = await openTcpSubflow({
    localAddress: '127.0.0.2',
    remoteAddress: '127.0.0.1',
    remotePort: listener.port,
    queueLimit: 64 * 1024,
  });
  const server = await accepted;
  return { client, server, received, close: () => listener.close() };
}

const until = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe.each([
  ['udp', udpPair],
  ['tcp', tcpPair],
] as const)('transport compliance: %s', (kind, makePair) => {
  let pair: Pair | undefined;
  afterEach(async () => {
    pair?.client.close();
    await pair?.close();
    pair = undefined;
  });

  it('leaves from the local address it was bound to, as the peer sees it', async () => {
    pair = await makePair();
    expect(pair.client.kind).toBe(kind);
    expect(pair.client.localAddress).toBe('127.0.0.2');
    expect(pair.server.remoteAddress).toBe('127.0.0.2');
    expect(pair.server.remotePort).toBe(pair.client.localPort);
  });

  it('delivers each packet whole, with its boundaries, in both directions', async () => {
    pair = await makePair();
    const sizes = [1, 100, 1200, Math.min(pair.client.maxPacketSize, 16000)];
    const sent = sizes.map((n) => randomBytes(n));
    for (const p of sent) pair.client.send(p);
    await until(() => pair!.received.length === sent.length);
    expect(pair.received.map((b) => b.toString('hex'))).toEqual(sent.map((b) => b.toString('hex')));
    const back: Buffer[] = [];
    pair.client.onPacket = (p) => back.push(p);
    pair.server.send(Buffer.from('reply'));
    await until(() => back.length === 1);
    expect(back[0]!.toString()).toBe('reply');
  });

  it('reports its own close once and refuses to send afterwards', async () => {
    pair = await makePair();
    let closes = 0;
    pair.client.onClose = () => closes++;
    pair.client.close();
    pair.client.close();
    expect(closes).toBe(1);
    expect(pair.client.closed).toBe(true);
    expect(pair.client.send(Buffer.from('late'))).toBe(false);
  });
});

describe('TCP-specific behaviour', () => {
  it('signals backpressure above its queue limit and drains later', async () => {
    const pair = await tcpPair();
    // Stop reading on the server so the queue builds up.
    const big = randomBytes(60000);
    let refused = false;
    for (let i = 0; i < 500 && !refused; i++) refused = !pair.client.send(big);
    expect(refused).toBe(true);
    expect(pair.client.queuedBytes).toBeGreaterThan(64 * 1024);
    const drained = new Promise<void>((r) => (pair.client.onDrain = r));
    await drained;
    await until(() => pair.received.length > 0);
    pair.client.close();
    await pair.close();
  });

  it('closes with a typed error on a record longer than the cap, without crashing the listener', async () => {
    const listener = await TcpListener.listen('127.0.0.1', 0);
    const error = new Promise<unknown>((resolve) => {
      listener.onSubflow = (s) => (s.onClose = resolve);
    });
    const socket = net.connect({ host: '127.0.0.1', port: listener.port });
    socket.on('error', () => undefined);
    socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]));
    expect(await error).toMatchObject({ code: 'BRAID_ERR_WIRE_TOO_LARGE' });
    socket.destroy();
    await listener.close();
  });
});
