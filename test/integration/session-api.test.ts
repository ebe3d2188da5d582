import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sessionSocket } from '../../core/api/session-socket.js';
import { BraidClient } from '../../core/api/client.js';
import { formatInvite } from '../../core/handshake/invite.js';
import { createLogger, createMemoryLogger } from '../../core/util/log.js';
import { useRelay } from '../support/relay-fixture.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('session API (paper Table I)', () => {
  const relayOf = useRelay();

  it('connects a striped session and echoes bytes through the relay in order', async () => {
    const socket = sessionSocket('reliable-ordered', ['loss', 'throughput']);
    expect(socket.state).toBe('idle');
    const stream = await socket.connect(relayOf().invite, {
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'tcp'],
      target: 'echo',
      logger: createLogger({ level: 'error' }),
    });
    expect(socket.state).toBe('striped');
    expect(socket.association?.livePaths.length).toBe(2);
    const payload = randomBytes(3_000_000);
    const received = readAll(stream);
    stream.end(payload);
    expect((await received).equals(payload)).toBe(true);
    await socket.close();
    expect(socket.state).toBe('closed');
  });

  it('with allowLegacy, falls back to one plain TCP connection when the peer never answers HELLO, and says so in state and log', async () => {
    const server = net.createServer((s) => s.pipe(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const invite = formatInvite({
      host: '127.0.0.1',
      port,
      fingerprint: 'cd'.repeat(32),
      keyId: '00'.repeat(8),
      key: randomBytes(32),
    });
    const { logger, lines } = createMemoryLogger('warn');
    const socket = sessionSocket();
    const stream = await socket.connect(invite, {
      via: ['127.0.0.2'],
      config: { helloTimeoutMs: 300 },
      logger,
      allowLegacy: true,
    });
    expect(socket.state).toBe('legacy');
    expect(stream).toBeInstanceOf(net.Socket);
    expect(lines.some((l) => String(l.msg).includes('legacy'))).toBe(true);
    // The echo server would have seen any TLS bytes on the first connection; this one is clean.
    const received = readAll(stream);
    stream.end(Buffer.from('hello legacy'));
    expect((await received).toString()).toBe('hello legacy');
    await socket.close();
    server.close();
  });
});

describe('relay targets', () => {
  const relayOf = useRelay();

  it('streams pseudo-random bytes for the asked time on source:<ms>, then ends', async () => {
    const socket = sessionSocket();
    const stream = await socket.connect(relayOf().invite, {
      via: ['127.0.0.2', '127.0.0.3'],
      target: 'source:300',
      logger: createLogger({ level: 'error' }),
    });
    const started = performance.now();
    stream.end();
    const received = await readAll(stream);
    const elapsed = performance.now() - started;
    expect(received.length).toBeGreaterThan(1_000_000);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    await socket.close();
  });
});

describe('closing an association under open streams', () => {
  const relayOf = useRelay();

  it('closes streams without an error event when the application closes the association', async () => {
    const connected = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2'],
      logger: createLogger({ level: 'error' }),
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    const stream = connected.client.openStream({ target: 'echo' });
    const errors: Error[] = [];
    stream.on('error', (e) => errors.push(e));
    stream.write(Buffer.alloc(1000));
    const closed = new Promise((r) => stream.on('close', r));
    connected.client.close();
    await closed;
    expect(errors).toEqual([]);
    expect(stream.destroyed).toBe(true);
  });

  it('fails open streams with BRAID_ERR_ASSOCIATION_CLOSED when the peer closes the association', async () => {
    const connected = await BraidClient.connect({
      invite: relayOf().invite,
      via: ['127.0.0.2'],
      logger: createLogger({ level: 'error' }),
    });
    if (connected.kind !== 'braid') throw new Error('expected a Braid association');
    const stream = connected.client.openStream({ target: 'echo' });
    stream.write(Buffer.alloc(1000));
    const failed = new Promise<unknown>((r) => stream.on('error', r));
    await new Promise((r) => setTimeout(r, 100));
    const server = [...relayOf().listener.associations.values()].find((a) =>
      a.id.equals(connected.client.association.id),
    )!;
    server.close();
    expect(await failed).toMatchObject({ code: 'BRAID_ERR_ASSOCIATION_CLOSED' });
    connected.client.close();
  });
});
