import type { Subflow } from '../transport/subflow.js';
import type { Clock, Random } from '../util/clock.js';

/**
 * An emulated uplink in front of a real loopback subflow, for the dashboard's demo
 * mode only (DESIGN §1: the demo needs no root and no server). Loopback has no delay
 * and no loss, so three loopback "uplinks" would all look the same; this adds a
 * one-way delay that wanders around a base value, and random loss on UDP, in user
 * space through BraidClient's `wrapSubflow` hook. Sockets, crypto and the session
 * layer stay real. The lab (test/lab) is the place for faithful link emulation.
 */
export interface DemoLinkProfile {
  /** Mean one-way delay added to outgoing packets (ms). */
  baseDelayMs: number;
  /** How far the delay wanders around the mean (ms). */
  delaySwingMs: number;
  /** Period of the slow wander (ms), so that charts show a trend and not only noise. */
  periodMs: number;
  /** Random per-packet spread on top (ms); releases stay in order (no reordering). */
  noiseMs: number;
  /** Fraction of packets lost in each direction; UDP only (a TCP path must not lose records). */
  lossRate: number;
}

/** Bytes held in the delay line before `send` reports back-pressure. */
const QUEUE_LIMIT = 512 * 1024;

export function demoLink(
  inner: Subflow,
  profile: DemoLinkProfile,
  clock: Clock,
  random: Random,
): Subflow {
  const lossy = inner.kind === 'udp' && profile.lossRate > 0;
  const queue: Array<{ at: number; packet: Uint8Array }> = [];
  let queued = 0;
  let lastRelease = 0;
  let timer: NodeJS.Timeout | undefined;
  let full = false;
  let onPacket: (packet: Buffer) => void = () => undefined;
  let onDrain: () => void = () => undefined;
  const phase = random() * Math.PI * 2;

  const delayNow = (now: number): number =>
    Math.max(
      0,
      profile.baseDelayMs +
        profile.delaySwingMs * Math.sin((now / profile.periodMs) * Math.PI * 2 + phase) +
        profile.noiseMs * random(),
    );

  const release = (): void => {
    timer = undefined;
    const now = clock.now();
    inner.cork();
    while (queue.length > 0 && queue[0]!.at <= now + 0.5) {
      const item = queue.shift()!;
      queued -= item.packet.length;
      if (!inner.closed) inner.send(item.packet);
    }
    inner.uncork();
    if (full && queued < QUEUE_LIMIT / 2) {
      full = false;
      onDrain();
    }
    arm();
  };
  const arm = (): void => {
    if (timer !== undefined || queue.length === 0) return;
    timer = setTimeout(release, Math.max(0, queue[0]!.at - clock.now()));
  };

  inner.onPacket = (packet) => {
    if (lossy && random() < profile.lossRate) return;
    onPacket(packet);
  };
  inner.onDrain = () => onDrain();

  const wrapper: Subflow = {
    get kind() {
      return inner.kind;
    },
    get localAddress() {
      return inner.localAddress;
    },
    get localPort() {
      return inner.localPort;
    },
    get remoteAddress() {
      return inner.remoteAddress;
    },
    get remotePort() {
      return inner.remotePort;
    },
    get maxPacketSize() {
      return inner.maxPacketSize;
    },
    get queuedBytes() {
      return inner.queuedBytes + queued;
    },
    get closed() {
      return inner.closed;
    },
    send(packet: Uint8Array): boolean {
      if (inner.closed) return false;
      if (lossy && random() < profile.lossRate) return true;
      const now = clock.now();
      // Releases never go backwards in time, so the line keeps packet order.
      lastRelease = Math.max(lastRelease, now + delayNow(now));
      queue.push({ at: lastRelease, packet });
      queued += packet.length;
      arm();
      if (queued >= QUEUE_LIMIT) full = true;
      return !full;
    },
    sendParts(parts: readonly Buffer[]): boolean {
      // The line holds whole packets; at demo rates one join per packet costs nothing.
      return wrapper.send(Buffer.concat(parts));
    },
    // The line releases packets by their own times; each release is corked on `inner`.
    cork(): void {},
    uncork(): void {},
    get onPacket() {
      return onPacket;
    },
    set onPacket(fn: (packet: Buffer) => void) {
      onPacket = fn;
    },
    get onDrain() {
      return onDrain;
    },
    set onDrain(fn: () => void) {
      onDrain = fn;
    },
    get onClose() {
      return inner.onClose;
    },
    set onClose(fn: Subflow['onClose']) {
      inner.onClose = fn;
    },
    close(): void {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      queue.length = 0;
      queued = 0;
      inner.close();
    },
  };
  return wrapper;
}
