import type dgram from 'node:dgram';
import { isIP } from 'node:net';
import { endianness } from 'node:os';
import { errorFields, type Logger } from '../util/log.js';

/**
 * UDP generic segmentation offload (Linux UDP_SEGMENT, kernel 4.18 and later): one
 * sendmsg hands the kernel a run of equal-size datagrams, which it cuts apart (in the
 * driver, or in software before the device) after one trip through the socket and IP
 * layers. A full Braid packet is exactly its path's size, so a flush's packets for one
 * path form such runs. Measured here through a TUN device, a datagram sent alone cost
 * 10.5 µs of the sender's CPU and one in a run of 16 cost 3–4 µs.
 *
 * Node's dgram has neither the option nor control messages, so the option is set on
 * the socket's descriptor (koffi calls setsockopt), after which every send longer than
 * the segment size is cut at that size. Hence the rules this module keeps: a run is
 * datagrams of one size, optionally ended by one shorter; a datagram sent alone is
 * never longer than the segment size in force; the size is changed only while nothing
 * waits in libuv's send queue (a queued send is cut by the size in force when it
 * leaves). The first run on a socket is sent by a direct send(2)/sendto(2), whose
 * error comes back at once: a kernel or device that refuses segmentation turns it off
 * for the socket, and that run's datagrams go one by one instead.
 */

/** include/uapi/linux/udp.h */
const SOL_UDP = 17;
const UDP_SEGMENT = 103;
/** The kernel's UDP_MAX_SEGMENTS. */
export const GSO_MAX_SEGMENTS = 64;
/** Most bytes in one send: below IPv4's UDP payload limit of 65507. */
export const GSO_MAX_BYTES = 65000;
/** Errors by which a kernel or device refuses segmentation (then it stays off). */
const REFUSALS: ReadonlySet<string> = new Set([
  'EIO',
  'EINVAL',
  'EMSGSIZE',
  'EOPNOTSUPP',
  'ENOTSUP',
  'ENOPROTOOPT',
]);

const MSG_DONTWAIT = 0x40;
const AF_INET = 2;
const AF_INET6 = 10;
/** errno values this module tells apart (Linux's generic ones: asm-generic/errno*.h). */
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  5: 'EIO',
  11: 'EAGAIN',
  22: 'EINVAL',
  90: 'EMSGSIZE',
  92: 'ENOPROTOOPT',
  95: 'EOPNOTSUPP',
  111: 'ECONNREFUSED',
  113: 'EHOSTUNREACH',
};

interface Libc {
  setsockopt(fd: number, level: number, name: number, value: Int32Array, length: number): number;
  send(fd: number, data: Buffer, length: number, flags: number): number;
  sendto(
    fd: number,
    data: Buffer,
    length: number,
    flags: number,
    to: Buffer,
    toLength: number,
  ): number;
  inetPton(family: number, text: string, out: Buffer): number;
  errno(): number;
}

let libc: Promise<Libc | string> | undefined;

/** libc's setsockopt through koffi, once per process; a string says why not. */
function loadLibc(): Promise<Libc | string> {
  libc ??= (async (): Promise<Libc | string> => {
    if (process.platform !== 'linux') return `UDP_SEGMENT is Linux only (${process.platform})`;
    try {
      const koffi = (await import('koffi')).default;
      const lib = koffi.load('libc.so.6');
      const setsockopt = lib.func('int setsockopt(int, int, int, const void *, uint32_t)');
      const send = lib.func('long send(int, const void *, size_t, int)');
      const sendto = lib.func(
        'long sendto(int, const void *, size_t, int, const void *, uint32_t)',
      );
      const inetPton = lib.func('int inet_pton(int, const char *, void *)');
      return {
        setsockopt: (fd, level, name, value, length) =>
          setsockopt(fd, level, name, value, length) as number,
        send: (fd, data, length, flags) => send(fd, data, length, flags) as number,
        sendto: (fd, data, length, flags, to, toLength) =>
          sendto(fd, data, length, flags, to, toLength) as number,
        inetPton: (family, text, out) => inetPton(family, text, out) as number,
        errno: () => koffi.errno(),
      };
    } catch (err) {
      return `koffi could not load libc: ${errorFields(err).error ?? 'unknown'}`;
    }
  })();
  return libc;
}

/** The descriptor of a bound dgram socket, from node's internal state; undefined when hidden. */
export function socketFd(socket: dgram.Socket): number | undefined {
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    if (sym.description !== 'state symbol') continue;
    const state: unknown = Reflect.get(socket, sym);
    if (typeof state !== 'object' || state === null) return undefined;
    const handle: unknown = Reflect.get(state, 'handle');
    if (typeof handle !== 'object' || handle === null) return undefined;
    const fd: unknown = Reflect.get(handle, 'fd');
    return typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }
  return undefined;
}

/** Whether segmentation is on unless asked otherwise: BRAID_UDP_GSO=0 turns it off. */
export function segmentationByDefault(): boolean {
  return process.env.BRAID_UDP_GSO !== '0';
}

/** Datagrams held for one destination between cork() and uncork(). */
export class DatagramBatch {
  readonly items: Array<readonly Buffer[]> = [];
  readonly sizes: number[] = [];
  count = 0;
  bytes = 0;

  add(packet: Uint8Array | readonly Buffer[]): void {
    let parts: readonly Buffer[];
    let size = 0;
    if (packet instanceof Uint8Array) {
      parts = [Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength)];
      size = packet.byteLength;
    } else {
      parts = packet;
      for (let i = 0; i < packet.length; i++) size += packet[i]!.length;
    }
    this.items[this.count] = parts;
    this.sizes[this.count] = size;
    this.count++;
    this.bytes += size;
  }

  clear(): void {
    // Drop the references so sent buffers can be collected.
    for (let i = 0; i < this.count; i++) this.items[i] = EMPTY;
    this.count = 0;
    this.bytes = 0;
  }
}

const EMPTY: readonly Buffer[] = [];

/**
 * A UDP subflow's side of Subflow.cork(): datagrams added while corked wait in a
 * batch; uncorked, each goes at once. `flush` sends a batch, which is cleared after.
 */
export class DatagramCork {
  private corked = false;
  private readonly batch = new DatagramBatch();

  constructor(private readonly flush: (batch: DatagramBatch) => void) {}

  /** Bytes held. */
  get bytes(): number {
    return this.batch.bytes;
  }

  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    this.corked = false;
    if (this.batch.count === 0) return;
    try {
      this.flush(this.batch);
    } finally {
      this.batch.clear();
    }
  }

  add(packet: Uint8Array | readonly Buffer[]): void {
    this.batch.add(packet);
    if (!this.corked) this.uncork();
  }

  /** Forgets what is held (the subflow closed). */
  drop(): void {
    this.corked = false;
    this.batch.clear();
  }
}

export type SegmentationMode = 'off' | 'untested' | 'on';

/** What a socket's segmentation did, for diagnostics and tests. */
export interface SegmentationStats {
  mode: SegmentationMode;
  /** Segment size in force on the socket; 0 when none. */
  segmentSize: number;
  /** Sends that carried a run of two or more datagrams. */
  runs: number;
  /** Datagrams that left in those runs. */
  datagramsInRuns: number;
  /** Datagrams sent one per send. */
  singles: number;
  /** Datagrams dropped because the segment size could not change under a queued send. */
  dropped: number;
  /** Why segmentation is off, when it is. */
  offReason: string | undefined;
}

/**
 * Sends a socket's datagrams, in runs where it can. One per socket; the socket must be
 * bound (connected or not).
 */
export class SegmentingSender {
  /**
   * Set by the owner: errors of the first run's send that do not refuse segmentation
   * (an ICMP error that a connected socket reports on its next send).
   */
  onSendError: (err: NodeJS.ErrnoException) => void = () => undefined;
  private mode: SegmentationMode;
  private segment = 0;
  private offReason: string | undefined;
  private runs = 0;
  private datagramsInRuns = 0;
  private singles = 0;
  private dropped = 0;
  /** Reused: node copies a send's buffer list before it returns. */
  private readonly joined: Buffer[] = [];

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly fd: number,
    private readonly lib: Libc | undefined,
    offReason: string | undefined,
    private readonly log: Logger,
    private readonly where: string,
  ) {
    this.mode = lib === undefined ? 'off' : 'untested';
    this.offReason = offReason;
  }

  /**
   * A sender for `socket`; with `enabled` false, or where the platform, koffi or the
   * socket's descriptor is missing, every datagram goes alone (the reason is logged
   * at debug and kept in stats()).
   */
  static async create(
    socket: dgram.Socket,
    enabled: boolean,
    log: Logger,
    where: string,
  ): Promise<SegmentingSender> {
    let reason: string | undefined;
    let lib: Libc | undefined;
    const fd = socketFd(socket) ?? -1;
    if (!enabled) reason = 'turned off (option or BRAID_UDP_GSO=0)';
    else if (fd < 0) reason = "node's socket state has no descriptor";
    else {
      const loaded = await loadLibc();
      if (typeof loaded === 'string') reason = loaded;
      else lib = loaded;
    }
    if (reason !== undefined && enabled) log.debug('UDP segmentation off', { where, reason });
    return new SegmentingSender(socket, fd, lib, reason, log, where);
  }

  stats(): SegmentationStats {
    return {
      mode: this.mode,
      segmentSize: this.segment,
      runs: this.runs,
      datagramsInRuns: this.datagramsInRuns,
      singles: this.singles,
      dropped: this.dropped,
      offReason: this.offReason,
    };
  }

  /**
   * Sends the batch's datagrams in order to `port`:`address` (both undefined on a
   * connected socket). Throws what node's send throws synchronously (a bad port).
   */
  sendBatch(batch: DatagramBatch, port?: number, address?: string): void {
    const n = batch.count;
    const sizes = batch.sizes;
    let i = 0;
    while (i < n) {
      const size = sizes[i]!;
      let j = i + 1;
      if (this.mode !== 'off') {
        const most = Math.min(GSO_MAX_SEGMENTS, Math.floor(GSO_MAX_BYTES / size));
        while (j < n && j - i < most && sizes[j] === size) j++;
        // One shorter datagram may end a run: the kernel's last segment may be short.
        if (
          j < n &&
          j - i < most &&
          sizes[j]! < size &&
          (j - i) * size + sizes[j]! <= GSO_MAX_BYTES
        )
          j++;
      }
      if (j - i >= 2 && this.setSegment(size)) this.sendRun(batch, i, j, port, address);
      else for (let k = i; k < j; k++) this.sendOne(batch.items[k]!, sizes[k]!, port, address);
      i = j;
    }
  }

  /** Sends one datagram by itself. */
  sendOne(parts: readonly Buffer[], size: number, port?: number, address?: string): void {
    // The segment size in force would cut a longer datagram.
    if (this.segment !== 0 && size > this.segment && !this.setSegment(0)) {
      this.dropped++;
      return;
    }
    this.singles++;
    if (port === undefined) this.socket.send(parts);
    else this.socket.send(parts, port, address);
  }

  private sendRun(
    batch: DatagramBatch,
    from: number,
    to: number,
    port?: number,
    address?: string,
  ): void {
    if (this.mode === 'untested') {
      if (!this.testRun(batch, from, to, port, address)) {
        // Refused, or not sent for a reason of its own: one by one, as if never run.
        for (let k = from; k < to; k++)
          this.sendOne(batch.items[k]!, batch.sizes[k]!, port, address);
        return;
      }
    } else {
      const joined = this.joined;
      joined.length = 0;
      for (let k = from; k < to; k++) {
        const parts = batch.items[k]!;
        for (let p = 0; p < parts.length; p++) joined.push(parts[p]!);
      }
      if (port === undefined) this.socket.send(joined);
      else this.socket.send(joined, port, address);
    }
    this.runs++;
    this.datagramsInRuns += to - from;
  }

  /**
   * Sends the socket's first run by a direct system call, so that its error is known
   * now; true when it went (segmentation is then on).
   */
  private testRun(
    batch: DatagramBatch,
    from: number,
    to: number,
    port?: number,
    address?: string,
  ): boolean {
    const lib = this.lib!;
    const parts: Buffer[] = [];
    for (let k = from; k < to; k++) parts.push(...batch.items[k]!);
    const data = Buffer.concat(parts);
    let result: number;
    if (port === undefined) result = lib.send(this.fd, data, data.length, MSG_DONTWAIT);
    else {
      const dest = sockaddr(lib, address ?? '', port);
      if (dest === undefined) return false;
      result = lib.sendto(this.fd, data, data.length, MSG_DONTWAIT, dest, dest.length);
    }
    if (result === data.length) {
      this.mode = 'on';
      this.log.debug('UDP segmentation on', { where: this.where, segmentSize: this.segment });
      return true;
    }
    const errno = lib.errno();
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    if (REFUSALS.has(code)) this.turnOff(`the kernel refused a segmented send (${code})`);
    else if (code !== 'EAGAIN') {
      const err: NodeJS.ErrnoException = new Error(`UDP send failed: ${code}`);
      err.code = code;
      err.errno = -errno;
      this.onSendError(err);
    }
    return false;
  }

  private turnOff(reason: string): void {
    this.mode = 'off';
    this.offReason = reason;
    this.log.warn('UDP segmentation off; datagrams go one per send', { where: this.where, reason });
    // Older kernels check every send of a socket with a segment size against the
    // device's offloads, so none stays in force. Should the queue hold sends, a later
    // single datagram longer than the size clears it (sendOne).
    this.setSegment(0);
  }

  /**
   * Puts `size` in force (0: none); false when it cannot now: sends wait in libuv's
   * queue (they would leave cut by the new size), or setsockopt failed (then
   * segmentation is off for good, and a size that stays in force is cleared later).
   */
  private setSegment(size: number): boolean {
    if (this.segment === size) return true;
    if (this.lib === undefined) return size === 0;
    if (size !== 0 && this.mode === 'off') return false;
    if (this.socket.getSendQueueCount() > 0) return false;
    if (this.lib.setsockopt(this.fd, SOL_UDP, UDP_SEGMENT, Int32Array.of(size), 4) !== 0) {
      const errno = this.lib.errno();
      if (size !== 0) this.turnOff(`setsockopt(UDP_SEGMENT) failed, errno ${errno}`);
      else this.log.warn('could not clear UDP_SEGMENT', { where: this.where, errno });
      return false;
    }
    this.segment = size;
    return true;
  }
}

/** struct sockaddr_in / sockaddr_in6 for an IP literal; undefined for anything else. */
function sockaddr(lib: Libc, address: string, port: number): Buffer | undefined {
  const family = isIP(address);
  if (family === 4) {
    const out = Buffer.alloc(16);
    writeFamily(out, AF_INET);
    out.writeUInt16BE(port, 2);
    return lib.inetPton(AF_INET, address, out.subarray(4, 8)) === 1 ? out : undefined;
  }
  if (family === 6) {
    const out = Buffer.alloc(28);
    writeFamily(out, AF_INET6);
    out.writeUInt16BE(port, 2);
    return lib.inetPton(AF_INET6, address, out.subarray(8, 24)) === 1 ? out : undefined;
  }
  return undefined;
}

/** sa_family is in host order, the port in network order. */
function writeFamily(out: Buffer, family: number): void {
  if (endianness() === 'LE') out.writeUInt16LE(family, 0);
  else out.writeUInt16BE(family, 0);
}
