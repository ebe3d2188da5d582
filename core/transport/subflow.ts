import type { TransportKind } from '../wire/frame.js';
import type { BraidError } from '../util/errors.js';

/**
 * One transport flow from one local address to one remote address: the interface every
 * transport implements (UDP, TCP, more later), so that one compliance suite
 * (test/integration/transport-compliance.test.ts) tests them all. A subflow moves
 * whole packets (clear header ‖ sealed frames) and knows nothing of their contents;
 * the session layer owns it and sets the three callbacks.
 */
export interface Subflow {
  readonly kind: TransportKind;
  /** The address the socket is bound to, as the peer sees it (never a wildcard). */
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Largest packet this subflow carries (UDP: datagram payload; TCP: record body). */
  readonly maxPacketSize: number;
  /**
   * Hands one packet to the transport. The subflow may keep a reference to `packet`
   * until the kernel took it, so the caller must not modify it afterwards (sealed
   * packets are fresh buffers). Returns false when the subflow wants no more for now
   * (TCP: bytes queued in user space above its queue limit); `onDrain` follows. Never
   * throws; after close it drops the packet and returns false.
   */
  send(packet: Uint8Array): boolean;
  /**
   * Like `send`, for one packet given as consecutive pieces (header, ciphertext, tag
   * from PacketProtection.sealParts), sent without joining them: one datagram from an
   * iovec on UDP, one record in a writev on TCP. The same reference rule applies.
   */
  sendParts(parts: readonly Buffer[]): boolean;
  /**
   * Holds what send() and sendParts() take until uncork(), so that a flush's packets
   * leave together: on UDP in runs of one system call each (segmentation offload), on
   * TCP in one writev. Sends return as they would uncorked. Not nested.
   */
  cork(): void;
  /** Sends what cork() held, in order. */
  uncork(): void;
  /** Bytes accepted by send() but not yet handed to the kernel. */
  readonly queuedBytes: number;
  readonly closed: boolean;
  /** Set by the owner. Called with each packet received; the buffer may be a view of a larger one. */
  onPacket: (packet: Buffer) => void;
  /** Set by the owner. Called once after send() returned false, when the queue drained. */
  onDrain: () => void;
  /**
   * Set by the owner. Called exactly once when the subflow closes: with undefined after
   * the owner's own close(), with a BraidError (code, addresses) when the transport
   * failed or the peer closed it.
   */
  onClose: (error: BraidError | undefined) => void;
  close(): void;
}
