/** A small SOCKS5 client for tests: written from RFC 1928, independent of the server's code. */
import net from 'node:net';
import dgram from 'node:dgram';
import { once } from 'node:events';

/** Reads exact byte counts off a socket. */
export class ByteReader {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private ended = false;
  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
  }
  private onData = (d: Buffer): void => {
    this.buf = Buffer.concat([this.buf, d]);
    this.waiter?.();
  };
  private onEnd = (): void => {
    this.ended = true;
    this.waiter?.();
  };
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`connection ended after ${this.buf.length} of ${n} bytes`);
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = undefined;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  /** Stops reading; bytes already buffered go back to the socket's readers. */
  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    if (this.buf.length > 0) this.socket.unshift(this.buf);
  }
}

export function addressBytes(host: string, port: number): Buffer {
  const p = Buffer.from([port >> 8, port & 255]);
  if (net.isIPv4(host)) return Buffer.concat([Buffer.from([1, ...host.split('.').map(Number)]), p]);
  if (net.isIPv6(host)) {
    const sa = new net.SocketAddress({ address: host, family: 'ipv6' });
    const full = sa.address.includes('::') ? expand(sa.address) : sa.address;
    const bytes = Buffer.alloc(16);
    full.split(':').forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
    return Buffer.concat([Buffer.from([4]), bytes, p]);
  }
  return Buffer.concat([Buffer.from([3, host.length]), Buffer.from(host), p]);
}

function expand(a: string): string {
  const [l, r] = a.split('::');
  const left = l ? l.split(':') : [];
  const right = r ? r.split(':') : [];
  return [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right].join(
    ':',
  );
}

export interface SocksResult {
  socket: net.Socket;
  reply: number;
  bound: { host: string; port: number };
}

/** Greeting (+ RFC 1929 auth), then the request; resolves with the reply and the socket ready for data. */
export async function socksRequest(
  proxyPort: number,
  command: 1 | 2 | 3,
  host: string,
  port: number,
  options: { auth?: { username: string; password: string }; proxyHost?: string } = {},
): Promise<SocksResult> {
  const socket = net.connect({
    port: proxyPort,
    host: options.proxyHost ?? '127.0.0.1',
    allowHalfOpen: true,
  });
  await once(socket, 'connect');
  const reader = new ByteReader(socket);
  socket.write(Buffer.from([5, 1, options.auth ? 2 : 0]));
  const method = await reader.read(2);
  if (method[1] === 0xff) throw Object.assign(new Error('no acceptable method'), { reply: 0xff });
  if (options.auth) {
    const u = Buffer.from(options.auth.username);
    const pw = Buffer.from(options.auth.password);
    socket.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([pw.length]), pw]));
    const status = await reader.read(2);
    if (status[1] !== 0) throw Object.assign(new Error('authentication failed'), { reply: 0x101 });
  }
  socket.write(Buffer.concat([Buffer.from([5, command, 0]), addressBytes(host, port)]));
  const head = await reader.read(4);
  const atyp = head[3];
  const addrLen = atyp === 1 ? 4 : atyp === 4 ? 16 : (await reader.read(1))[0]!;
  const addr = await reader.read(addrLen + 2);
  const boundHost =
    atyp === 1
      ? [...addr.subarray(0, 4)].join('.')
      : atyp === 4
        ? [...Array(8).keys()].map((i) => addr.readUInt16BE(i * 2).toString(16)).join(':')
        : addr.subarray(0, addrLen).toString();
  reader.detach();
  return { socket, reply: head[1]!, bound: { host: boundHost, port: addr.readUInt16BE(addrLen) } };
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A UDP echo server on 127.0.0.1 that answers "re:" + the datagram. */
export async function udpEchoServer(): Promise<{
  port: number;
  seen: () => number;
  close: () => void;
}> {
  const s = dgram.createSocket('udp4');
  let seen = 0;
  s.on('message', (m, r) => {
    seen++;
    s.send(Buffer.concat([Buffer.from('re:'), m]), r.port, r.address);
  });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return { port: s.address().port, seen: () => seen, close: () => s.close() };
}

/** A TCP server on 127.0.0.1 that echoes and, after the client's FIN, sends "bye" and ends. */
export async function tcpEchoServer(): Promise<{
  port: number;
  server: net.Server;
  peers: string[];
  close: () => Promise<void>;
}> {
  const peers: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    peers.push(s.remoteAddress ?? '');
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end('bye'));
    s.on('error', () => s.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    server,
    peers,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
