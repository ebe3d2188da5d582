import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SocksServer, type ProxiedConnection } from '../../core/proxy/socks-server.js';
import { RelayOutbound } from '../../core/proxy/relay-outbound.js';
import { RuleBook } from '../../core/proxy/rules.js';
import { encodeUdpDatagram } from '../../core/proxy/socks5-encode.js';
import { parseUdpDatagram, Reply } from '../../core/proxy/socks5-parser.js';
import type { BraidStream } from '../../core/api/braid-stream.js';
import type { BraidMessageSocket } from '../../core/api/message-socket.js';
import { createLogger, createMemoryLogger } from '../../core/util/log.js';
import { useRelay } from '../support/relay-fixture.js';
import { readAll, socksRequest, tcpEchoServer, udpEchoServer } from '../unit/proxy/socks-client.js';

const quiet = createLogger({ level: 'error' });

async function proxyTo(
  invite: string,
  extra: Partial<Parameters<typeof SocksServer.listen>[0]> = {},
) {
  const outbound = await RelayOutbound.open({
    invite,
    via: ['127.0.0.2', '127.0.0.3'],
    logger: quiet,
  });
  return SocksServer.listen({ port: 0, outbound, logger: quiet, ...extra });
}

describe('SOCKS5 proxy through the relay', () => {
  const relayOf = useRelay({ forward: { allow: ['127.0.0.0/8', '::1/128'] } });
  let echo: Awaited<ReturnType<typeof tcpEchoServer>>;
  let proxy: SocksServer;
  const relayStreams: BraidStream[] = [];
  const relaySessions: Array<BraidStream | BraidMessageSocket> = [];
  /** The app the proxy sees for this test process, from one CONNECT. */
  const appOfThisProcess = async (): Promise<ProxiedConnection['app']> => {
    const seen = once(proxy, 'connection') as Promise<[ProxiedConnection]>;
    const { socket } = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
    socket.end();
    await readAll(socket);
    return (await seen)[0].app;
  };
  beforeAll(async () => {
    echo = await tcpEchoServer();
    proxy = await proxyTo(relayOf().invite, { rules: new RuleBook({ logger: quiet }) });
    relayOf().listener.on('stream', (s) => {
      relayStreams.push(s);
      relaySessions.push(s);
    });
    relayOf().listener.on('messages', (m) => relaySessions.push(m));
  });
  afterAll(async () => {
    await proxy.close();
    await echo.close();
  });

  it('CONNECTs to an IPv4 address, relays both ways and carries the half-close', async () => {
    const before = relayStreams.length;
    const { socket, reply, bound } = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
    expect(reply).toBe(Reply.succeeded);
    // BND is the relay's own end of its connection to the destination.
    expect(bound.host).toBe('127.0.0.1');
    expect(bound.port).toBeGreaterThan(0);
    const payload = randomBytes(1_000_000);
    const received = readAll(socket);
    socket.end(payload);
    const all = await received;
    expect(all.subarray(0, payload.length).equals(payload)).toBe(true);
    expect(all.subarray(payload.length).toString()).toBe('bye');
    expect(relayStreams.length).toBe(before + 1);
    expect(relayStreams.at(-1)!.session.target).toBe(`tcp:127.0.0.1:${echo.port}`);
  });

  it('resolves a domain name at the relay', async () => {
    const { socket, reply } = await socksRequest(proxy.port, 1, 'localhost', echo.port);
    expect(reply).toBe(Reply.succeeded);
    expect(relayStreams.at(-1)!.session.target).toBe(`tcp:localhost:${echo.port}`);
    const received = readAll(socket);
    socket.end('hi');
    expect((await received).toString()).toBe('hibye');
  });

  it('CONNECTs to an IPv6 address (bracketed in the session target)', async () => {
    const v6 = net.createServer((c) => c.end('v6 ok'));
    v6.listen(0, '::1');
    await once(v6, 'listening');
    const port = (v6.address() as net.AddressInfo).port;
    const { socket, reply, bound } = await socksRequest(proxy.port, 1, '::1', port);
    expect(reply).toBe(Reply.succeeded);
    expect(bound.host).toBe('0:0:0:0:0:0:0:1');
    expect(relayStreams.at(-1)!.session.target).toBe(`tcp:[::1]:${port}`);
    expect((await readAll(socket)).toString()).toBe('v6 ok');
    v6.close();
  });

  it('replies only after the relay connected: "connection refused" for a closed port', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const { reply, socket } = await socksRequest(proxy.port, 1, '127.0.0.1', port);
    expect(reply).toBe(Reply.connectionRefused);
    // The proxy closes its side after the failure reply.
    expect((await readAll(socket)).length).toBe(0);
    socket.destroy();
  });

  it('opens the session with the app rule priorities and retunes open sessions when the rule changes', async () => {
    const seen = once(proxy, 'connection') as Promise<[ProxiedConnection]>;
    const { socket, reply } = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
    expect(reply).toBe(Reply.succeeded);
    const [conn] = await seen;
    const rule = proxy.ruleBook.ruleFor(conn.app);
    expect(relayStreams.at(-1)!.session.priorities).toEqual(rule.priorities);
    const reversed = [...rule.priorities].reverse();
    proxy.ruleBook.set({ ...rule, priorities: reversed });
    expect(conn.session?.priorities).toEqual(reversed);
    proxy.ruleBook.delete(conn.app.appId);
    socket.end();
    await readAll(socket);
  });

  it.each([
    ['unreliable-unordered', 'a message session'],
    ['reliable-ordered', 'a length-prefixed stream'],
  ] as const)(
    'relays UDP ASSOCIATE datagrams of an app whose UDP is %s over %s, and drops fragments',
    async (semantics, _carrier) => {
      const app = await appOfThisProcess();
      proxy.ruleBook.set({ ...proxy.ruleBook.ruleFor(app), udpSemantics: semantics });
      const udpEcho = await udpEchoServer();
      const client = dgram.createSocket('udp4');
      client.bind(0, '127.0.0.1');
      await once(client, 'listening');
      const { socket, reply, bound } = await socksRequest(proxy.port, 3, '0.0.0.0', 0);
      expect(reply).toBe(Reply.succeeded);
      expect(bound.host).toBe('127.0.0.1');
      const answers: Buffer[] = [];
      const gotTwo = new Promise<void>((resolve) =>
        client.on('message', (m) => {
          answers.push(m);
          if (answers.length === 2) resolve();
        }),
      );
      const fragmentsBefore = proxy.stats.udpFragmentsDropped;
      const fragment = encodeUdpDatagram(
        { host: '127.0.0.1', port: udpEcho.port },
        Buffer.from('f'),
      );
      fragment[2] = 1;
      client.send(fragment, bound.port, bound.host);
      client.send(
        encodeUdpDatagram({ host: '127.0.0.1', port: udpEcho.port }, Buffer.from('a')),
        bound.port,
        bound.host,
      );
      client.send(
        encodeUdpDatagram({ host: 'localhost', port: udpEcho.port }, Buffer.from('b')),
        bound.port,
        bound.host,
      );
      await gotTwo;
      const parsed = answers.map((a) => parseUdpDatagram(a));
      expect(parsed.map((p) => p.data.toString()).sort()).toEqual(['re:a', 're:b']);
      expect(parsed[0]!.address).toMatchObject({ host: '127.0.0.1', port: udpEcho.port });
      expect(proxy.stats.udpFragmentsDropped).toBe(fragmentsBefore + 1);
      expect(udpEcho.seen()).toBe(2);
      // The relay saw one session with target "udp" and the app's semantics in its OPEN.
      const last = relaySessions.at(-1)!;
      expect(last.session.target).toBe('udp');
      expect(last.session.semantics).toBe(semantics);
      socket.end();
      await once(socket, 'close');
      client.close();
      udpEcho.close();
      proxy.ruleBook.delete(app.appId);
    },
  );

  it('drops a UDP ASSOCIATE datagram larger than a message session carries, counted and logged; a reliable-ordered app carries it', async () => {
    const { logger, lines } = createMemoryLogger('warn');
    const own = await proxyTo(relayOf().invite, { rules: new RuleBook({ logger: quiet }), logger });
    const udpEcho = await udpEchoServer();
    const client = dgram.createSocket('udp4');
    client.bind(0, '127.0.0.1');
    await once(client, 'listening');
    const big = randomBytes(4000);
    const small = Buffer.from('small');
    try {
      for (const semantics of ['unreliable-unordered', 'reliable-ordered'] as const) {
        const seen = once(own, 'connection') as Promise<[ProxiedConnection]>;
        const probe = await socksRequest(own.port, 1, '127.0.0.1', echo.port);
        probe.socket.destroy();
        const app = (await seen)[0].app;
        own.ruleBook.set({ ...own.ruleBook.ruleFor(app), udpSemantics: semantics });
        const { socket, reply, bound } = await socksRequest(own.port, 3, '0.0.0.0', 0);
        expect(reply).toBe(Reply.succeeded);
        const answers: Buffer[] = [];
        const tooLargeBefore = own.stats.udpDatagramsTooLarge;
        const seenBefore = udpEcho.seen();
        const expected = semantics === 'reliable-ordered' ? 2 : 1;
        const done = new Promise<void>((resolve) =>
          client.on('message', (m) => {
            answers.push(m);
            if (answers.length === expected) resolve();
          }),
        );
        client.send(
          encodeUdpDatagram({ host: '127.0.0.1', port: udpEcho.port }, big),
          bound.port,
          bound.host,
        );
        client.send(
          encodeUdpDatagram({ host: '127.0.0.1', port: udpEcho.port }, small),
          bound.port,
          bound.host,
        );
        await done;
        const data = answers.map((a) => parseUdpDatagram(a).data.length).sort((a, b) => a - b);
        if (semantics === 'reliable-ordered') {
          expect(data).toEqual([3 + small.length, 3 + big.length]);
          expect(own.stats.udpDatagramsTooLarge).toBe(tooLargeBefore);
        } else {
          // The small datagram after it still goes: the app is not cut off.
          expect(data).toEqual([3 + small.length]);
          expect(own.stats.udpDatagramsTooLarge).toBe(tooLargeBefore + 1);
          expect(udpEcho.seen() - seenBefore).toBe(1);
          const line = lines.find((l) => String(l.msg).includes('too large'));
          expect(line).toMatchObject({ level: 'warn', bytes: 10 + big.length });
          expect(Number(line!.limit)).toBeLessThan(1500);
        }
        client.removeAllListeners('message');
        socket.destroy();
        own.ruleBook.delete(app.appId);
      }
    } finally {
      client.close();
      udpEcho.close();
      await own.close();
    }
  });

  it('closes a UDP ASSOCIATE whose client ended with its request, without an unexpected error', async () => {
    const { logger, lines } = createMemoryLogger('error');
    const own = await proxyTo(relayOf().invite, { rules: new RuleBook({ logger: quiet }), logger });
    try {
      for (let i = 0; i < 5; i++) {
        const s = net.connect(own.port, '127.0.0.1');
        await once(s, 'connect');
        s.on('data', () => undefined);
        s.end(Buffer.from([5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
        await once(s, 'close');
      }
      for (let i = 0; i < 50 && own.connections().length > 0; i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(own.connections()).toEqual([]);
      expect(lines).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('answers malformed and unsupported requests with their reply codes and keeps serving', async () => {
    const malformedBefore = proxy.stats.malformed;
    // SOCKS4 greeting: no SOCKS5 reply fits; the connection is closed.
    const v4 = net.connect(proxy.port, '127.0.0.1');
    v4.on('error', () => v4.destroy());
    v4.write(Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]));
    await once(v4, 'close');
    // BIND and an unknown command: "command not supported".
    expect((await socksRequest(proxy.port, 2, '127.0.0.1', echo.port)).reply).toBe(
      Reply.commandNotSupported,
    );
    const raw = net.connect(proxy.port, '127.0.0.1');
    raw.write(Buffer.from([5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, 0, 80]));
    const answer = await readAll(raw);
    expect([...answer]).toEqual([5, 0, 5, Reply.addressTypeNotSupported, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(proxy.stats.malformed).toBe(malformedBefore + 3);
    const { reply, socket } = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
    expect(reply).toBe(Reply.succeeded);
    socket.end();
    await readAll(socket);
  });

  it('bypasses the session layer per app and globally: no session opened, the connection still works', async () => {
    const seen = once(proxy, 'connection') as Promise<[ProxiedConnection]>;
    const first = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
    const [conn] = await seen;
    first.socket.end();
    await readAll(first.socket);
    proxy.ruleBook.set({ ...proxy.ruleBook.ruleFor(conn.app), bypass: true });
    const sessionsBefore = relayStreams.length;
    const bypassedBefore = proxy.stats.bypassed;
    const viaSeen = once(proxy, 'connection') as Promise<[ProxiedConnection]>;
    const { socket, reply } = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
    expect(reply).toBe(Reply.succeeded);
    expect((await viaSeen)[0].via).toBe('bypass');
    const received = readAll(socket);
    socket.end('direct');
    expect((await received).toString()).toBe('directbye');
    proxy.ruleBook.delete(conn.app.appId);
    proxy.setGlobalBypass(true);
    const second = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port);
    second.socket.end('all');
    expect((await readAll(second.socket)).toString()).toBe('allbye');
    proxy.setGlobalBypass(false);
    expect(relayStreams.length).toBe(sessionsBefore);
    expect(proxy.stats.bypassed).toBe(bypassedBefore + 2);
  });
});

describe('SOCKS5 proxy, relay with its default policy', () => {
  const relayOf = useRelay();
  let proxy: SocksServer;
  beforeAll(async () => {
    proxy = await proxyTo(relayOf().invite, { auth: { username: 'me', password: 'pw' } });
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('answers "not allowed by ruleset" for a destination on the relay loopback', async () => {
    const echo = await tcpEchoServer();
    const { reply } = await socksRequest(proxy.port, 1, '127.0.0.1', echo.port, {
      auth: { username: 'me', password: 'pw' },
    });
    expect(reply).toBe(Reply.notAllowed);
    expect(echo.peers).toEqual([]);
    await echo.close();
  });

  it('requires RFC 1929 credentials when configured', async () => {
    await expect(socksRequest(proxy.port, 1, '127.0.0.1', 9)).rejects.toMatchObject({
      reply: 0xff,
    });
    await expect(
      socksRequest(proxy.port, 1, '127.0.0.1', 9, { auth: { username: 'me', password: 'no' } }),
    ).rejects.toMatchObject({ reply: 0x101 });
  });
});
