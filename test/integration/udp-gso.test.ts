import dgram from 'node:dgram';
import koffi from 'koffi';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryLogger, type Logger } from '../../core/util/log.js';
import {
  DatagramBatch,
  GSO_MAX_SEGMENTS,
  SegmentingSender,
  socketFd,
} from '../../core/transport/udp-gso.js';
import { until } from '../support/wait.js';

/**
 * The sender of UDP runs (segmentation offload, udp-gso.ts) on real sockets: what
 * leaves in runs arrives as the datagrams it was made of, what must not be cut is
 * not, and a kernel that refuses a run turns it off without losing later datagrams.
 */

const sockets: dgram.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

async function bound(connectTo?: number): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  if (connectTo !== undefined)
    await new Promise<void>((resolve) => s.connect(connectTo, '127.0.0.1', resolve));
  return s;
}

/** A receiver that keeps each datagram. */
async function receiver(): Promise<{ port: number; got: Buffer[] }> {
  const s = await bound();
  const got: Buffer[] = [];
  s.on('message', (m) => got.push(m));
  return { port: s.address().port, got };
}

/** Datagram `i` of `size` bytes: index, then a pattern the index decides. */
function datagram(i: number, size: number): Buffer {
  const p = Buffer.alloc(size);
  p.writeUInt16BE(i, 0);
  for (let k = 2; k < size; k++) p[k] = (i * 7 + k) & 0xff;
  return p;
}

function batchOf(packets: Buffer[]): DatagramBatch {
  const b = new DatagramBatch();
  // Half as one buffer, half in pieces (header, body, tag), as the session layer sends.
  packets.forEach((p, i) =>
    b.add(
      i % 2 === 0 ? p : [p.subarray(0, 3), p.subarray(3, p.length - 16), p.subarray(p.length - 16)],
    ),
  );
  return b;
}

const hex = (list: Buffer[]): string[] => list.map((p) => p.toString('hex'));

describe.runIf(process.platform === 'linux')('UDP segmentation offload', () => {
  let log: Logger;
  let lines: Array<Record<string, unknown>>;
  beforeEach(() => {
    ({ logger: log, lines } = createMemoryLogger());
  });

  it('sends equal-size datagrams in runs that arrive as the datagrams they were made of', async () => {
    const rx = await receiver();
    const socket = await bound(rx.port);
    const sender = await SegmentingSender.create(socket, true, log, 'test');
    expect(sender.stats().mode).toBe('untested');
    // Runs of full packets with a short end, an ACK alone, one longer than the run size
    // (must leave uncut, so the size in force is cleared first), then runs again,
    // one longer than the kernel's 64 segments.
    const sizes = [
      ...Array<number>(5).fill(1452),
      300,
      80,
      ...Array<number>(3).fill(1452),
      ...Array<number>(GSO_MAX_SEGMENTS + 6).fill(1000),
      999,
      4000,
    ];
    const sent = sizes.map((n, i) => datagram(i, n));
    sender.sendBatch(batchOf(sent));
    await until(() => rx.got.length === sent.length, 'the first batch');
    expect(hex(rx.got)).toEqual(hex(sent));
    const first = sender.stats();
    expect(first.mode).toBe('on');
    // 5×1452 + 300; 80 alone; 3×1452 + 1000; 64×1000 (the kernel's most); 5×1000 +
    // 999; 4000 alone, which the size in force would cut, so it was cleared.
    expect(first).toMatchObject({ runs: 4, singles: 2, dropped: 0, segmentSize: 0 });
    expect(first.datagramsInRuns).toBe(sent.length - 2);

    rx.got.length = 0;
    sender.sendBatch(batchOf(sent));
    await until(() => rx.got.length === sent.length, 'the second batch');
    expect(hex(rx.got)).toEqual(hex(sent));
    const second = sender.stats();
    expect(second.runs - first.runs).toBe(first.runs);
    expect(second.singles - first.singles).toBe(first.singles);
  });

  it('runs to an unconnected socket’s destinations too', async () => {
    const a = await receiver();
    const b = await receiver();
    const socket = await bound();
    const sender = await SegmentingSender.create(socket, true, log, 'test');
    const toA = Array.from({ length: 10 }, (_, i) => datagram(i, 1452));
    const toB = Array.from({ length: 7 }, (_, i) => datagram(100 + i, i === 6 ? 10 : 1452));
    for (let round = 0; round < 2; round++) {
      sender.sendBatch(batchOf(toA), a.port, '127.0.0.1');
      sender.sendBatch(batchOf(toB), b.port, '127.0.0.1');
      await until(() => a.got.length === 10 && b.got.length === 7, 'both destinations');
      expect(hex(a.got)).toEqual(hex(toA));
      expect(hex(b.got)).toEqual(hex(toB));
      a.got.length = 0;
      b.got.length = 0;
    }
    expect(sender.stats().runs).toBeGreaterThanOrEqual(3);
  });

  it('runs to an unconnected IPv6 socket’s destination (the first by sendto with a sockaddr_in6)', async () => {
    const rx = dgram.createSocket('udp6');
    const tx = dgram.createSocket('udp6');
    sockets.push(rx, tx);
    await new Promise<void>((resolve) => rx.bind(0, '::1', resolve));
    await new Promise<void>((resolve) => tx.bind(0, '::1', resolve));
    const got: Buffer[] = [];
    rx.on('message', (m) => got.push(m));
    const sender = await SegmentingSender.create(tx, true, log, 'test');
    const sent = Array.from({ length: 12 }, (_, i) => datagram(i, i === 11 ? 77 : 1452));
    sender.sendBatch(batchOf(sent), rx.address().port, '::1');
    sender.sendBatch(batchOf(sent), rx.address().port, '::1');
    await until(() => got.length === 2 * sent.length, 'both runs');
    expect(hex(got)).toEqual(hex([...sent, ...sent]));
    expect(sender.stats()).toMatchObject({ mode: 'on', runs: 2, datagramsInRuns: 24, singles: 0 });
  });

  it('sends one at a time when turned off', async () => {
    const rx = await receiver();
    const socket = await bound(rx.port);
    const sender = await SegmentingSender.create(socket, false, log, 'test');
    const sent = Array.from({ length: 20 }, (_, i) => datagram(i, 1452));
    sender.sendBatch(batchOf(sent));
    await until(() => rx.got.length === sent.length, 'the batch');
    expect(hex(rx.got)).toEqual(hex(sent));
    expect(sender.stats()).toMatchObject({ mode: 'off', runs: 0, singles: 20 });
  });

  it('turns itself off when the kernel refuses a run, and every datagram still arrives', async () => {
    const rx = await receiver();
    const socket = await bound(rx.port);
    // A socket that sends without UDP checksums: the kernel refuses segmentation on it
    // (udp_send_skb: EINVAL), while single datagrams still go.
    const libc = koffi.load('libc.so.6');
    const setsockopt = libc.func('int setsockopt(int, int, int, const void *, uint32_t)');
    const SOL_SOCKET = 1;
    const SO_NO_CHECK = 11;
    expect(setsockopt(socketFd(socket), SOL_SOCKET, SO_NO_CHECK, Int32Array.of(1), 4)).toBe(0);
    const sender = await SegmentingSender.create(socket, true, log, 'test');
    const sent = Array.from({ length: 8 }, (_, i) => datagram(i, 1452));
    sender.sendBatch(batchOf(sent));
    // Refused at once: the run's datagrams went one by one instead.
    expect(sender.stats()).toMatchObject({ mode: 'off', runs: 0, singles: 8, segmentSize: 0 });
    expect(sender.stats().offReason).toContain('EINVAL');
    expect(lines.some((l) => l.msg === 'UDP segmentation off; datagrams go one per send')).toBe(
      true,
    );
    sender.sendBatch(batchOf(sent));
    await until(() => rx.got.length === 2 * sent.length, 'both batches');
    expect(hex(rx.got)).toEqual(hex([...sent, ...sent]));
    expect(sender.stats()).toMatchObject({ mode: 'off', runs: 0, singles: 16, dropped: 0 });
  });
});
