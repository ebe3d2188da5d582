import { randomBytes } from 'node:crypto';
import { createServer, connect as netConnect, type AddressInfo, type Server } from 'node:net';
import * as tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../core/handshake/certificate.js';
import {
  ControlServer,
  connectControl,
  type ConnectControlOptions,
  type EstablishedAssociation,
} from '../../core/handshake/control.js';
import type { ClientKey } from '../../core/handshake/identity-store.js';
import { CLIENT_AUTH_LABEL, helloProof } from '../../core/handshake/keys.js';
import { BraidError, ErrorCodes } from '../../core/util/errors.js';
import { createLogger } from '../../core/util/log.js';
import { encodeFrames } from '../../core/wire/encode.js';
import { decodeFrames } from '../../core/wire/decode.js';
import { WIRE_VERSION, type Frame } from '../../core/wire/frame.js';
import { RECORD_HEADER_LENGTH, writeRecordHeader } from '../../core/wire/record-decoder.js';

const HOST = '127.0.0.1';
const quiet = createLogger({ level: 'silent' });
const identity = createSelfSignedCertificate({ commonName: 'braid test relay', days: 2 });
const alice: ClientKey = { name: 'alice', keyId: '00112233aabbccdd', key: randomBytes(32) };

function record(frame: Frame): Buffer {
  const body = encodeFrames([frame]);
  const out = Buffer.alloc(RECORD_HEADER_LENGTH + body.length);
  writeRecordHeader(out, 0, body.length);
  body.copy(out, RECORD_HEADER_LENGTH);
  return out;
}

interface Harness {
  server: ControlServer;
  port: number;
  clients: ClientKey[];
  associations: EstablishedAssociation[];
  rejected: Array<{ err: BraidError; remote: string }>;
}

async function startServer(helloTimeoutMs = 2000): Promise<Harness> {
  const clients = [alice];
  const server = new ControlServer({
    identity,
    clients: () => clients,
    addresses: ['127.0.0.1', '::1'],
    udpPort: 40001,
    tcpPort: 40002,
    transports: ['udp', 'tcp'],
    logger: quiet,
    helloTimeoutMs,
  });
  const associations: EstablishedAssociation[] = [];
  const rejected: Array<{ err: BraidError; remote: string }> = [];
  server.on('association', (a) => associations.push(a));
  server.on('rejected', (err, remote) => rejected.push({ err, remote }));
  const address = await server.listen(0, HOST);
  return { server, port: address.port, clients, associations, rejected };
}

function clientOptions(
  port: number,
  patch: Partial<ConnectControlOptions> = {},
): ConnectControlOptions {
  return {
    host: HOST,
    port,
    fingerprint: identity.fingerprint,
    keyId: alice.keyId,
    key: alice.key,
    addresses: ['127.0.0.1'],
    transports: ['udp'],
    helloTimeoutMs: 2000,
    logger: quiet,
    ...patch,
  };
}

async function connectBraid(
  port: number,
  patch: Partial<ConnectControlOptions> = {},
): Promise<EstablishedAssociation> {
  const result = await connectControl(clientOptions(port, patch));
  if (result.kind !== 'braid') throw new Error(`expected braid, got legacy: ${result.reason}`);
  return result.association;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof BraidError) return err.code;
    throw err;
  }
  return 'resolved';
}

function until(predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (predicate()) resolve();
      else if (Date.now() - start > timeoutMs) reject(new Error('condition not met in time'));
      else setTimeout(tick, 10);
    };
    tick();
  });
}

/** A raw TLS 1.3 client: sends `payload(socket)` after the handshake, collects the reply until close. */
function rawTls(
  port: number,
  payload: (socket: tls.TLSSocket) => Buffer | undefined,
): Promise<{ reply: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tls.connect(
      { host: HOST, port, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
      () => {
        const bytes = payload(socket);
        if (bytes !== undefined) socket.write(bytes);
      },
    );
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve({ reply: Buffer.concat(chunks), closed: true }));
  });
}

function replyFrame(reply: Buffer): Frame {
  const length = reply.readUInt32BE(0);
  const decoded = decodeFrames(reply.subarray(RECORD_HEADER_LENGTH, RECORD_HEADER_LENGTH + length));
  if (!decoded.ok) throw decoded.error;
  return decoded.value[0]!;
}

function hello(
  socket: tls.TLSSocket,
  patch: Partial<Extract<Frame, { type: 'hello' }>> = {},
): Frame {
  return {
    type: 'hello',
    version: WIRE_VERSION,
    keyId: Buffer.from(alice.keyId, 'hex'),
    proof: helloProof(
      alice.key,
      socket.exportKeyingMaterial(32, CLIENT_AUTH_LABEL, Buffer.alloc(0)),
    ),
    addresses: ['127.0.0.1'],
    transports: ['udp'],
    ...patch,
  };
}

/** A plain TCP server standing in for a peer that does not run Braid. */
async function plainServer(
  onSocket: (socket: import('node:net').Socket) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => sockets.delete(s));
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('control handshake over TLS 1.3', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(async () => {
    await h.server.close();
  });
  afterEach(() => {
    for (const a of h.associations) a.control.destroy();
    h.associations.length = 0;
    h.rejected.length = 0;
  });

  it('establishes an association whose two ends derive identical secrets', async () => {
    const client = await connectBraid(h.port, {
      addresses: ['127.0.0.1', '127.0.0.2'],
      transports: ['udp', 'tcp'],
    });
    await until(() => h.associations.length === 1);
    const server = h.associations[0]!;
    expect(client.associationId.toString('hex')).toBe(server.associationId.toString('hex'));
    expect(client.associationId.length).toBe(8);
    for (const pathId of [0, 1, 2, 1000]) {
      const c = client.secrets.pathKeys(pathId, 'client');
      const s = server.secrets.pathKeys(pathId, 'server');
      expect(c.send.key.equals(s.receive.key)).toBe(true);
      expect(c.send.iv.equals(s.receive.iv)).toBe(true);
      expect(c.receive.key.equals(s.send.key)).toBe(true);
      expect(c.send.key.equals(c.receive.key)).toBe(false);
    }
    const join = {
      type: 'join' as const,
      associationId: client.associationId,
      pathId: 3,
      transport: 'tcp' as const,
      mac: client.secrets.joinMac(3, 'tcp'),
    };
    expect(server.secrets.verifyJoin(join)).toBe(true);
    expect(client.remote).toEqual({
      addresses: ['127.0.0.1', '::1'],
      udpPort: 40001,
      tcpPort: 40002,
      transports: ['udp', 'tcp'],
    });
    expect(server.remote.addresses).toEqual(['127.0.0.1', '127.0.0.2']);
    expect(server.remote.transports).toEqual(['udp', 'tcp']);
    expect(server.clientName).toBe('alice');
    expect(client.role).toBe('client');
    expect(server.role).toBe('server');
    expect(client.peer).toBe(`${HOST}:${h.port}`);
    expect(client.leftover.length).toBe(0);
    expect(server.leftover.length).toBe(0);
    // The control connection stays open after the handshake.
    expect(client.control.destroyed).toBe(false);
    // With no reader attached, the server still notices the client closing its end.
    const serverClosed = new Promise<void>((r) => server.control.once('close', () => r()));
    client.control.end();
    await serverClosed;
  });

  it('gives two associations different ids and different keys', async () => {
    const a = await connectBraid(h.port);
    const b = await connectBraid(h.port);
    expect(a.associationId.equals(b.associationId)).toBe(false);
    expect(
      a.secrets.pathKeys(0, 'client').send.key.equals(b.secrets.pathKeys(0, 'client').send.key),
    ).toBe(false);
    a.control.destroy();
    b.control.destroy();
  });

  it('accepts a client key added while the server runs', async () => {
    const bob: ClientKey = { name: 'bob', keyId: 'ffeeddccbbaa9988', key: randomBytes(32) };
    expect(await codeOf(connectBraid(h.port, { keyId: bob.keyId, key: bob.key }))).toBe(
      'BRAID_ERR_AUTH_FAILED',
    );
    h.clients.push(bob);
    try {
      const association = await connectBraid(h.port, { keyId: bob.keyId, key: bob.key });
      await until(() => h.associations.length === 1);
      expect(h.associations[0]!.clientName).toBe('bob');
      association.control.destroy();
    } finally {
      h.clients.pop();
    }
  });

  it('refuses a wrong client key with BRAID_ERR_AUTH_FAILED and keeps serving a legitimate client', async () => {
    expect(await codeOf(connectBraid(h.port, { key: randomBytes(32) }))).toBe(
      'BRAID_ERR_AUTH_FAILED',
    );
    expect(await codeOf(connectBraid(h.port, { keyId: '0000000000000000' }))).toBe(
      'BRAID_ERR_AUTH_FAILED',
    );
    await until(() => h.rejected.length === 2);
    expect(h.rejected.map((r) => r.err.code)).toEqual([
      'BRAID_ERR_AUTH_FAILED',
      'BRAID_ERR_AUTH_FAILED',
    ]);
    expect(h.associations).toHaveLength(0);
    const good = await connectBraid(h.port);
    expect(good.associationId.length).toBe(8);
    good.control.destroy();
  });

  it('refuses a server whose certificate does not match the pin with BRAID_ERR_FINGERPRINT, before sending HELLO', async () => {
    expect(await codeOf(connectBraid(h.port, { fingerprint: 'ab'.repeat(32) }))).toBe(
      'BRAID_ERR_FINGERPRINT',
    );
    // The server saw the connection end without a HELLO.
    await until(() => h.rejected.length === 1);
    expect(h.rejected[0]!.err.code).toBe('BRAID_ERR_HANDSHAKE');
    expect(h.associations).toHaveLength(0);
  });

  it('never sends HELLO to a TLS server with another certificate, and never falls back to legacy', async () => {
    const other = createSelfSignedCertificate({ commonName: 'impostor', days: 1 });
    let received = 0;
    const impostor = tls.createServer(
      { key: other.keyPem, cert: other.certPem, minVersion: 'TLSv1.3' },
      (s) => {
        s.on('data', (c: Buffer) => (received += c.length));
        s.on('error', () => undefined);
      },
    );
    await new Promise<void>((r) => impostor.listen(0, HOST, () => r()));
    const port = (impostor.address() as AddressInfo).port;
    try {
      expect(await codeOf(connectControl(clientOptions(port)))).toBe('BRAID_ERR_FINGERPRINT');
      await new Promise((r) => setTimeout(r, 100));
      expect(received).toBe(0);
    } finally {
      await new Promise<void>((r) => impostor.close(() => r()));
    }
  });

  it('answers a HELLO with another wire version with ERROR BRAID_ERR_WIRE_VERSION', async () => {
    const { reply } = await rawTls(h.port, (s) => record(hello(s, { version: WIRE_VERSION + 1 })));
    const frame = replyFrame(reply);
    expect(frame.type).toBe('error');
    expect(frame.type === 'error' && frame.code).toBe(ErrorCodes.BRAID_ERR_WIRE_VERSION);
    await until(() => h.rejected.length === 1);
    expect(h.rejected[0]!.err.code).toBe('BRAID_ERR_WIRE_VERSION');
    expect(h.associations).toHaveLength(0);
  });

  it('rejects a proof replayed from another TLS connection', async () => {
    // A proof made for one channel's exporter must not open another channel.
    const stolen = helloProof(alice.key, randomBytes(32));
    const { reply } = await rawTls(h.port, (s) => record(hello(s, { proof: stolen })));
    const frame = replyFrame(reply);
    expect(frame.type === 'error' && frame.code).toBe(ErrorCodes.BRAID_ERR_AUTH_FAILED);
  });

  it('hands over bytes that followed HELLO in the same write as leftover', async () => {
    const extra = Buffer.from('after-hello');
    const socket = tls.connect({ host: HOST, port: h.port, rejectUnauthorized: false });
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('secureConnect', () => r()));
    socket.write(Buffer.concat([record(hello(socket)), extra]));
    await until(() => h.associations.length === 1);
    expect(h.associations[0]!.leftover.toString()).toBe('after-hello');
    socket.destroy();
  });

  it('refuses records that do not decode and keeps serving', async () => {
    const garbage = Buffer.alloc(RECORD_HEADER_LENGTH + 3);
    writeRecordHeader(garbage, 0, 3);
    garbage.set([0x7f, 1, 2], RECORD_HEADER_LENGTH);
    const { reply } = await rawTls(h.port, () => garbage);
    const frame = replyFrame(reply);
    expect(frame.type === 'error' && frame.code).toBe(ErrorCodes.BRAID_ERR_WIRE_UNKNOWN_FRAME);
    const huge = Buffer.alloc(RECORD_HEADER_LENGTH);
    huge.writeUInt32BE(0x7fff_ffff);
    const tooLarge = replyFrame((await rawTls(h.port, () => huge)).reply);
    expect(tooLarge.type === 'error' && tooLarge.code).toBe(ErrorCodes.BRAID_ERR_WIRE_TOO_LARGE);
    const good = await connectBraid(h.port);
    good.control.destroy();
  });

  it('closes a connection that sends random bytes instead of TLS, and keeps serving', async () => {
    const closed = await new Promise<boolean>((resolve) => {
      const s = netConnect(h.port, HOST, () => s.write(randomBytes(512)));
      s.on('error', () => undefined);
      s.on('close', () => resolve(true));
    });
    expect(closed).toBe(true);
    await until(() => h.rejected.length === 1);
    expect(h.rejected[0]!.err.code).toBe('BRAID_ERR_HANDSHAKE');
    expect(h.rejected[0]!.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    const good = await connectBraid(h.port);
    good.control.destroy();
  });

  it('refuses a client that offers only TLS 1.2', async () => {
    const err = await new Promise<Error>((resolve) => {
      const s = tls.connect({
        host: HOST,
        port: h.port,
        rejectUnauthorized: false,
        maxVersion: 'TLSv1.2',
      });
      s.on('secureConnect', () => resolve(new Error('TLS 1.2 handshake completed')));
      s.on('error', resolve);
    });
    expect((err as { code?: string }).code).toMatch(/^ERR_SSL_/);
    await until(() => h.rejected.length === 1);
    expect(h.rejected[0]!.err.code).toBe('BRAID_ERR_HANDSHAKE');
  });
});

describe('control server deadlines', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer(300);
  });
  afterAll(async () => {
    await h.server.close();
  });

  it('drops a TCP connection that never starts TLS within helloTimeoutMs', async () => {
    const start = Date.now();
    await new Promise<void>((resolve) => {
      const s = netConnect(h.port, HOST);
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    const elapsed = Date.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    await until(() => h.rejected.some((r) => r.err.code === 'BRAID_ERR_HANDSHAKE_TIMEOUT'));
  });

  it('sends ERROR BRAID_ERR_HANDSHAKE_TIMEOUT to a TLS client that never sends HELLO', async () => {
    const start = Date.now();
    const { reply } = await rawTls(h.port, () => undefined);
    const frame = replyFrame(reply);
    expect(frame.type === 'error' && frame.code).toBe(ErrorCodes.BRAID_ERR_HANDSHAKE_TIMEOUT);
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('closes every connection and stops listening on close()', async () => {
    const server = await startServer(5000);
    const established = await connectBraid(server.port);
    const idle = netConnect(server.port, HOST);
    idle.on('error', () => undefined);
    const idleClosed = new Promise<void>((r) => idle.on('close', () => r()));
    const controlClosed = new Promise<void>((r) => established.control.on('close', () => r()));
    await new Promise((r) => setTimeout(r, 50));
    await server.server.close();
    await Promise.all([idleClosed, controlClosed]);
    expect(await codeOf(connectControl(clientOptions(server.port)))).toBe('BRAID_ERR_TRANSPORT');
  });
});

describe('client against peers that are not Braid servers', () => {
  it('treats a TCP server that never speaks as legacy once helloTimeoutMs passes', async () => {
    const peer = await plainServer(() => undefined);
    try {
      const start = Date.now();
      const result = await connectControl(clientOptions(peer.port, { helloTimeoutMs: 300 }));
      const elapsed = Date.now() - start;
      expect(result.kind).toBe('legacy');
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(2000);
    } finally {
      await peer.close();
    }
  });

  it('treats an echo server as legacy', async () => {
    const peer = await plainServer((s) => s.pipe(s));
    try {
      const start = Date.now();
      const result = await connectControl(clientOptions(peer.port, { helloTimeoutMs: 1000 }));
      expect(result.kind).toBe('legacy');
      expect(Date.now() - start).toBeLessThan(1500);
    } finally {
      await peer.close();
    }
  });

  it('treats a server that answers with plain text and closes as legacy', async () => {
    const peer = await plainServer((s) => s.end('220 smtp.example ESMTP\r\n'));
    try {
      const result = await connectControl(clientOptions(peer.port, { helloTimeoutMs: 1000 }));
      expect(result.kind).toBe('legacy');
    } finally {
      await peer.close();
    }
  });

  // Not legacy: the pin proved a Braid server, so silence is an attack (SECURITY.md, downgrade).
  it('rejects BRAID_ERR_HANDSHAKE_TIMEOUT, never legacy, when the pinned TLS 1.3 server never answers HELLO', async () => {
    const accepted: tls.TLSSocket[] = [];
    const silent = tls.createServer(
      { key: identity.keyPem, cert: identity.certPem, minVersion: 'TLSv1.3' },
      (s) => {
        accepted.push(s);
        s.on('error', () => undefined);
      },
    );
    await new Promise<void>((r) => silent.listen(0, HOST, () => r()));
    const port = (silent.address() as AddressInfo).port;
    try {
      const start = Date.now();
      expect(await codeOf(connectControl(clientOptions(port, { helloTimeoutMs: 300 })))).toBe(
        'BRAID_ERR_HANDSHAKE_TIMEOUT',
      );
      expect(Date.now() - start).toBeGreaterThanOrEqual(250);
    } finally {
      for (const s of accepted) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('rejects a refused connection with BRAID_ERR_TRANSPORT naming the peer', async () => {
    const peer = await plainServer(() => undefined);
    const port = peer.port;
    await peer.close();
    try {
      await connectControl(clientOptions(port));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(BraidError);
      expect((err as BraidError).code).toBe('BRAID_ERR_TRANSPORT');
      expect((err as BraidError).peer).toBe(`${HOST}:${port}`);
    }
  });

  it('rejects bad options with BRAID_ERR_USAGE before connecting', async () => {
    expect(await codeOf(connectControl(clientOptions(1, { fingerprint: 'abc' })))).toBe(
      'BRAID_ERR_USAGE',
    );
    expect(await codeOf(connectControl(clientOptions(1, { key: Buffer.alloc(3) })))).toBe(
      'BRAID_ERR_USAGE',
    );
    expect(await codeOf(connectControl(clientOptions(1, { addresses: ['not-an-ip'] })))).toBe(
      'BRAID_ERR_USAGE',
    );
  });
});
