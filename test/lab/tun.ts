import { closeSync, constants, openSync } from 'node:fs';
import koffi from 'koffi';
import { BraidError } from '../../core/util/errors.js';

/**
 * The thin native edge of the link emulator: TUN devices opened through
 * ioctl(TUNSETIFF), non-blocking reads and writes, and a ppoll() that waits for
 * readability or a deadline with microsecond precision on a koffi worker thread,
 * so the Node event loop stays free and no libuv threadpool thread is held.
 */

// linux/if_tun.h
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
// linux/if.h: struct ifreq is 40 bytes on x86_64; ifr_name[16] then ifr_flags.
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;
const POLLIN = 0x0001;
const EAGAIN = 11;
const EINTR = 4;

const libc = koffi.load('libc.so.6');
const cIoctl = libc.func('int ioctl(int fd, unsigned long request, ...)');
const cRead = libc.func('long read(int fd, void *buf, unsigned long count)');
const cWrite = libc.func('long write(int fd, const void *buf, unsigned long count)');
const cPpoll = libc.func('int ppoll(void *fds, unsigned long nfds, void *timeout, void *sigmask)');
const cPrctl = libc.func('int prctl(int option, ...)');
const PR_SET_TIMERSLACK = 29;

/** Creates a TUN device named `name` in the caller's network namespace; returns its fd. */
export function openTun(name: string): number {
  if (Buffer.byteLength(name) >= IFNAMSIZ) {
    throw new BraidError('BRAID_ERR_CONFIG', 'TUN device name too long', { value: name });
  }
  const fd = openSync('/dev/net/tun', constants.O_RDWR | constants.O_NONBLOCK);
  const ifr = Buffer.alloc(IFREQ_SIZE);
  ifr.write(name, 0, 'latin1');
  ifr.writeUInt16LE(IFF_TUN | IFF_NO_PI, IFNAMSIZ);
  const rc = cIoctl(fd, TUNSETIFF, 'void *', ifr) as number;
  if (rc < 0) {
    const errno = koffi.errno();
    closeSync(fd);
    throw new BraidError('BRAID_ERR_TRANSPORT', `ioctl(TUNSETIFF) failed with errno ${errno}`, {
      value: name,
    });
  }
  return fd;
}

export function closeTun(fd: number): void {
  closeSync(fd);
}

/**
 * Reads one packet into `buf`; returns its length, or 0 when nothing is queued.
 * A TUN read returns exactly one packet per call.
 */
export function readPacket(fd: number, buf: Buffer): number {
  const n = cRead(fd, buf, buf.length) as number;
  if (n >= 0) return n;
  const errno = koffi.errno();
  if (errno === EAGAIN || errno === EINTR) return 0;
  throw new BraidError('BRAID_ERR_TRANSPORT', `TUN read failed with errno ${errno}`, { value: fd });
}

/** Writes one packet; returns false when the kernel refused it (counted as a drop). */
export function writePacket(fd: number, packet: Buffer): boolean {
  const n = cWrite(fd, packet, packet.length) as number;
  return n === packet.length;
}

/**
 * Blocks the calling thread until one of `fds` is readable (or hung up) or
 * `timeoutMs` has passed (Infinity: no deadline). The forwarder is a synchronous
 * loop around this call: no event loop and no worker-thread hand-off sits between
 * a packet's due time and its write, which keeps release lateness in the tens of
 * microseconds.
 */
export class Poller {
  private readonly fds: Buffer;
  private readonly timespec = Buffer.alloc(16);
  private readonly count: number;

  constructor(fds: readonly number[]) {
    this.count = fds.length;
    this.fds = Buffer.alloc(8 * fds.length);
    fds.forEach((fd, i) => {
      this.fds.writeInt32LE(fd, 8 * i);
      this.fds.writeInt16LE(POLLIN, 8 * i + 4);
    });
  }

  /** Returns the number of ready descriptors (0 on timeout or EINTR). */
  wait(timeoutMs: number): number {
    let timeout: Buffer | null = null;
    if (Number.isFinite(timeoutMs)) {
      const ns = Math.max(0, Math.round(timeoutMs * 1e6));
      this.timespec.writeBigInt64LE(BigInt(Math.floor(ns / 1e9)), 0);
      this.timespec.writeBigInt64LE(BigInt(ns % 1e9), 8);
      timeout = this.timespec;
    }
    const n = cPpoll(this.fds, this.count, timeout, null) as number;
    if (n >= 0) return n;
    const errno = koffi.errno();
    if (errno === EINTR) return 0;
    throw new BraidError('BRAID_ERR_TRANSPORT', `ppoll failed with errno ${errno}`);
  }

  /** poll() revents of the i-th descriptor after the last wait. */
  revents(i: number): number {
    return this.fds.readInt16LE(8 * i + 6);
  }
}

export const POLL_IN = POLLIN;
export const POLL_HUP = 0x0010;
export const POLL_ERR = 0x0008;

/**
 * Asks the kernel to fire our timers within `ns` nanoseconds of their deadline
 * (the default timer slack is 50 µs); prctl(PR_SET_TIMERSLACK).
 */
export function setTimerSlack(ns: number): void {
  cPrctl(
    PR_SET_TIMERSLACK,
    'unsigned long',
    ns,
    'unsigned long',
    0,
    'unsigned long',
    0,
    'unsigned long',
    0,
  );
}
