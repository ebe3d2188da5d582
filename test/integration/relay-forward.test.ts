import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import type { BraidStream } from '../../core/api/braid-stream.js';
import { ForwardStatus, readForwardReply } from '../../core/relay/forward-reply.js';
import { StreamDatagramChannel } from '../../core/relay/datagram-channel.js';
import { encodeUdpDatagram } from '../../core/proxy/socks5-encode.js';
import { parseUdpDatagram } from '../../core/proxy/socks5-parser.js';
import { createLogger } from '../../core/util/log.js';
import { useRelay, withRelay } from '../support/relay-fixture.js';

const quiet = createLogger({ level: 'error' });

/** A TCP server on 127.0.0.1 that echoes, and after the client's FIN sends "bye" and ends (half-close). */
async function echoServer(): Promise<{
  port: number;
  server: net.Server;
  close: () => Promise<void>;
}> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end('bye'));
    s.on('error', () => s.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    server,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function connectClient(invite: string): Promise<BraidClient> {
  const r = await BraidClient.connect({ invite, via: ['127.0.0.2'], logger: quiet });
  if (r.kind !== 'braid') throw new Error('expected a Braid association');
  return r.client;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('relay forwarding, default policy (public destinations only)', () => {
  const relayOf = useRelay();
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let client: BraidClient;
  beforeAll(async () => {
    echo = await echoServer();
    client = await connectClient(relayOf().invite);
  });
  afterAll(async () => {
    client.close();
    await echo.close();
  });

  it('refuses a target on 127.0.0.1 with "not allowed", and never connects to it', async () => {
    let accepted = 0;
    echo.server.on('connection', () => accepted++);
    const stream = client.openStream({ target: `tcp:127.0.0.1:${echo.port}` });
    const reply = await readForwardReply(stream, 10_000);
    expect(reply.status).toBe(ForwardStatus.notAllowed);
    expect(reply.text).toContain('allow-private');
    expect(accepted).toBe(0);
  });

  it('checks after name resolution: "localhost" is refused like its address (DNS rebinding)', async () => {
    const stream = client.openStream({ target: `tcp:localhost:${echo.port}` });
    const reply = await readForwardReply(stream, 10_000);
    expect(reply.status).toBe(ForwardStatus.notAllowed);
    expect(reply.text).toMatch(/localhost resolves to/);
  });

  it('resets a session whose target it does not know, with the reason', async () => {
    const stream = client.openStream({ target: 'smtp:example.org' });
    const [err] = (await once(stream, 'error')) as [Error & { code?: string }];
    expect(err.message).toContain('unknown target');
  });
});

describe('relay forwarding with loopback explicitly allowed (for the test echo server)', () => {
  const relayOf = useRelay({ forward: { allow: ['127.0.0.0/8'] } });
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let client: BraidClient;
  beforeAll(async () => {
    echo = await echoServer();
    client = await connectClient(relayOf().invite);
  });
  afterAll(async () => {
    client.close();
    await echo.close();
  });

  it('connects, reports the bound address, relays both ways, and carries the half-close', async () => {
    const stream = client.openStream({ target: `tcp:127.0.0.1:${echo.port}` });
    const reply = await readForwardReply(stream, 10_000);
    expect(reply.status).toBe(ForwardStatus.ok);
    expect(reply.text).toMatch(/^127\.0\.0\.1:\d+$/);
    const payload = randomBytes(500_000);
    const received = readAll(stream);
    stream.end(payload);
    const all = await received;
    // The echo, then "bye" sent only after the server saw our FIN.
    expect(all.subarray(0, payload.length).equals(payload)).toBe(true);
    expect(all.subarray(payload.length).toString()).toBe('bye');
  });

  it('answers "connection refused" for a closed port', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const stream = client.openStream({ target: `tcp:127.0.0.1:${port}` });
    expect((await readForwardReply(stream, 10_000)).status).toBe(ForwardStatus.refused);
  });

  it('forwards UDP datagrams with the RFC 1928 header both ways and drops fragments', async () => {
    const udpEcho = dgram.createSocket('udp4');
    udpEcho.on('message', (m, r) =>
      udpEcho.send(Buffer.concat([Buffer.from('re:'), m]), r.port, r.address),
    );
    udpEcho.bind(0, '127.0.0.1');
    await once(udpEcho, 'listening');
    const port = udpEcho.address().port;
    let seen = 0;
    udpEcho.on('message', () => seen++);
    const stream = client.openStream({ target: 'udp' });
    expect((await readForwardReply(stream, 10_000)).status).toBe(ForwardStatus.ok);
    const channel = new StreamDatagramChannel(stream, quiet);
    const replies: Buffer[] = [];
    const two = new Promise<void>((resolve) =>
      channel.on('message', (d) => {
        replies.push(d);
        if (replies.length === 2) resolve();
      }),
    );
    const fragment = encodeUdpDatagram({ host: '127.0.0.1', port }, Buffer.from('frag'));
    fragment[2] = 1;
    channel.send(fragment);
    channel.send(encodeUdpDatagram({ host: '127.0.0.1', port }, Buffer.from('one')));
    channel.send(encodeUdpDatagram({ host: 'localhost', port }, Buffer.from('two')));
    await two;
    const parsed = replies.map((r) => parseUdpDatagram(r));
    expect(parsed.map((p) => p.data.toString()).sort()).toEqual(['re:one', 're:two']);
    expect(parsed[0]!.address).toMatchObject({ host: '127.0.0.1', port });
    expect(seen).toBe(2);
    channel.close();
    udpEcho.close();
  });
});

describe('relay limits per client and graceful shutdown', () => {
  it('refuses sessions over the per-client limit with the reason', async () => {
    const relay = await withRelay({
      limits: { maxSessions: 1 },
      forward: { allow: ['127.0.0.0/8'] },
    });
    const client = await connectClient(relay.invite);
    try {
      const first = client.openStream({ target: 'echo' });
      first.write('x');
      await once(first, 'data');
      const second = client.openStream({ target: 'tcp:127.0.0.1:9' });
      const reply = await readForwardReply(second, 10_000);
      expect(reply.status).toBe(ForwardStatus.notAllowed);
      expect(reply.text).toMatch(/sessions open \(limit 1\)/);
      expect(relay.clients()[0]).toMatchObject({ name: 'default', sessions: 1, refused: 1 });
    } finally {
      client.close();
      await relay.dispose();
    }
  });

  it('holds a client to its bytes per second on forwarded traffic (token bucket)', async () => {
    const relay = await withRelay({
      limits: { bytesPerSecond: 256 * 1024 },
      forward: { allow: ['127.0.0.0/8'] },
    });
    const source = net.createServer((s) => {
      // The relay resets the connection when the test stops reading early.
      s.on('error', () => s.destroy());
      s.end(randomBytes(1024 * 1024));
    });
    source.listen(0, '127.0.0.1');
    await once(source, 'listening');
    const client = await connectClient(relay.invite);
    try {
      // 768 KiB at 256 KiB/s with a 256 KiB burst: at least ~2 s; unthrottled, a few ms.
      const stream = client.openStream({
        target: `tcp:127.0.0.1:${(source.address() as net.AddressInfo).port}`,
      });
      expect((await readForwardReply(stream, 10_000)).status).toBe(ForwardStatus.ok);
      const started = performance.now();
      let bytes = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes >= 768 * 1024) break;
      }
      expect(performance.now() - started).toBeGreaterThan(1500);
    } finally {
      client.close();
      source.close();
      await relay.dispose();
    }
  });

  it('on shutdown refuses new sessions, lets open ones finish, then closes', async () => {
    const relay = await withRelay();
    const client = await connectClient(relay.invite);
    try {
      const open: BraidStream = client.openStream({ target: 'echo' });
      open.write('first');
      await once(open, 'data');
      const stopping = relay.shutdown(30_000);
      let stopped = false;
      void stopping.then(() => (stopped = true));
      const late = client.openStream({ target: 'echo' });
      const [err] = (await once(late, 'error')) as [Error];
      expect(err.message).toContain('shutting down');
      expect(stopped).toBe(false);
      const rest = readAll(open);
      open.end('last');
      expect((await rest).toString()).toBe('last');
      // A new association during the drain is closed at once: its joins fail, or it closes.
      const refused = await connectClient(relay.invite).then(
        (newcomer) =>
          Promise.race([
            once(newcomer.association, 'closed').then(() => true),
            new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
          ]),
        () => true,
      );
      expect(refused).toBe(true);
      await stopping;
      expect(relay.openSessions).toBe(0);
    } finally {
      client.close();
      await relay.dispose();
    }
  });
});
