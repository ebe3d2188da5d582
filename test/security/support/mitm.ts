/**
 * An on-path attacker on the control connection: a TCP proxy that sees every byte
 * between client and relay, split into TLS records (RFC 8446 §5.1: type, legacy
 * version, 16-bit length), and may drop, change or answer them.
 */
import net from 'node:net';
import { once } from 'node:events';

export interface TlsRecord {
  type: number;
  bytes: Buffer;
}

export type Direction = 'up' | 'down';

/** Per record: return it (possibly changed) to forward it, or undefined to drop it. */
export type RecordHook = (record: TlsRecord, dir: Direction, index: number) => Buffer | undefined;

export interface Mitm {
  port: number;
  /** Every record seen, both ways, in order (as received from the sender). */
  records: Array<{ dir: Direction; type: number; length: number }>;
  /** Raw bytes the client sent, for checks that nothing readable leaked. */
  upBytes: () => Buffer;
  close(): Promise<void>;
}

/** Splits a byte stream into TLS records; a stream that is not TLS comes out as one "record" of type -1. */
class RecordSplitter {
  private buf = Buffer.alloc(0);
  push(chunk: Buffer): TlsRecord[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: TlsRecord[] = [];
    for (;;) {
      if (this.buf.length < 5) return out;
      const type = this.buf[0]!;
      if (type < 20 || type > 24) {
        out.push({ type: -1, bytes: this.buf });
        this.buf = Buffer.alloc(0);
        return out;
      }
      const end = 5 + this.buf.readUInt16BE(3);
      if (this.buf.length < end) return out;
      out.push({ type, bytes: this.buf.subarray(0, end) });
      this.buf = this.buf.subarray(end);
    }
  }
}

export async function startMitm(targetPort: number, hook: RecordHook): Promise<Mitm> {
  const records: Mitm['records'] = [];
  const up: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    const pipe = (from: net.Socket, to: net.Socket, dir: Direction): void => {
      const splitter = new RecordSplitter();
      let index = 0;
      from.on('data', (chunk: Buffer) => {
        if (dir === 'up') up.push(Buffer.from(chunk));
        for (const record of splitter.push(chunk)) {
          records.push({ dir, type: record.type, length: record.bytes.length });
          const forward = hook(record, dir, index++);
          if (forward !== undefined && !to.destroyed) to.write(forward);
        }
      });
      from.on('end', () => to.end());
      from.on('close', () => to.destroy());
    };
    pipe(client, upstream, 'up');
    pipe(upstream, client, 'down');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    records,
    upBytes: () => Buffer.concat(up),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Record content types (RFC 8446 §5.1). */
export const TLS_HANDSHAKE = 22;
export const TLS_APPLICATION_DATA = 23;
