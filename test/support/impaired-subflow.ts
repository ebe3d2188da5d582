import type { Subflow } from '../../core/transport/subflow.js';
import { BraidError } from '../../core/util/errors.js';

export interface Impairment {
  /** Fraction of packets dropped in each direction. */
  dropRate?: number;
  /** Fraction of outgoing packets held back and sent after `reorderDelayMs`. */
  reorderRate?: number;
  reorderDelayMs?: number;
  /** Fraction of outgoing packets sent twice (a replay from the same source). */
  duplicateRate?: number;
  /** Fraction of outgoing packets with one bit flipped. */
  tamperRate?: number;
  /** Every packet in both directions is dropped (UDP blocked on this uplink, or a black hole). */
  blackhole?: boolean;
  /** The transport fails after this many packets were sent (the interface vanished mid-write). */
  dieAfterPackets?: number;
  /** Seeded random source so that failures replay. */
  random: () => number;
}

export interface ImpairmentCounters {
  dropped: number;
  reordered: number;
  duplicated: number;
  tampered: number;
}

/** Counters at zero, for one impaired subflow or a set of them. */
export function newCounters(): ImpairmentCounters {
  return { dropped: 0, reordered: 0, duplicated: 0, tampered: 0 };
}

/** Deterministic PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * An emulated bad link in front of a real subflow: the input under test (packets
 * lost, reordered, replayed or damaged on the way), while sockets, crypto and the
 * session layer stay real.
 */
export function impair(inner: Subflow, imp: Impairment, counters: ImpairmentCounters): Subflow {
  const drop = imp.dropRate ?? 0;
  const reorder = imp.reorderRate ?? 0;
  const dup = imp.duplicateRate ?? 0;
  const tamper = imp.tamperRate ?? 0;
  let onPacket: (packet: Buffer) => void = () => undefined;
  let sent = 0;
  inner.onPacket = (packet) => {
    if (imp.blackhole === true) {
      counters.dropped++;
      return;
    }
    if (drop > 0 && imp.random() < drop) {
      counters.dropped++;
      return;
    }
    onPacket(packet);
  };
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
      return inner.queuedBytes;
    },
    get closed() {
      return inner.closed;
    },
    send(packet: Uint8Array): boolean {
      if (inner.closed) return false;
      if (imp.dieAfterPackets !== undefined && ++sent > imp.dieAfterPackets) {
        inner.close();
        inner.onClose(new BraidError('BRAID_ERR_PATH_FAILED', 'emulated interface loss'));
        return false;
      }
      if (imp.blackhole === true) {
        counters.dropped++;
        return true;
      }
      if (drop > 0 && imp.random() < drop) {
        counters.dropped++;
        return true;
      }
      if (tamper > 0 && imp.random() < tamper) {
        counters.tampered++;
        const copy = Buffer.from(packet);
        const bit = Math.floor(imp.random() * copy.length * 8);
        copy[bit >> 3]! ^= 1 << (bit & 7);
        inner.send(copy);
        return inner.send(packet);
      }
      if (reorder > 0 && imp.random() < reorder) {
        counters.reordered++;
        const copy = Buffer.from(packet);
        setTimeout(() => inner.send(copy), imp.reorderDelayMs ?? 5);
        return true;
      }
      const ok = inner.send(packet);
      if (dup > 0 && imp.random() < dup) {
        counters.duplicated++;
        inner.send(Buffer.from(packet));
      }
      return ok;
    },
    sendParts(parts: readonly Buffer[]): boolean {
      // The emulated link works on whole packets; joining costs nothing that matters here.
      return wrapper.send(Buffer.concat(parts));
    },
    cork(): void {
      inner.cork();
    },
    uncork(): void {
      inner.uncork();
    },
    get onPacket() {
      return onPacket;
    },
    set onPacket(fn: (packet: Buffer) => void) {
      onPacket = fn;
    },
    get onDrain() {
      return inner.onDrain;
    },
    set onDrain(fn: () => void) {
      inner.onDrain = fn;
    },
    get onClose() {
      return inner.onClose;
    },
    set onClose(fn: Subflow['onClose']) {
      inner.onClose = fn;
    },
    close(): void {
      inner.close();
    },
  };
  return wrapper;
}
