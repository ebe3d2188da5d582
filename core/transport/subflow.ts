import type { TransportKind } from '../wire/frame.js';
import type { BraidError } from '../util/errors.js';

/**
 * One transport flow from a local address to a remote address: the interface every
 * transport implements (UDP, TCP, more later), so one compliance suite tests them all.
 */
export interface Subflow {
  readonly kind: TransportKind;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Largest packet this subflow carries (UDP: datagram payload; TCP: record body). */
  readonly maxPacketSize: number;
  /**
   * Hands one packet to the transport. Returns false when the subflow wants no more
   * for now (TCP: bytes queued above its limit); onDrain follows. Never throws;
   * after close it drops the packet and returns false.
   */
  send(packet: Uint8Array): boolean;
  /** Like `send`, for one packet given as consecutive pieces (header, ciphertext, tag), without joining them. */
  sendParts(parts: readonly Buffer[]): boolean;
  /** Bytes accepted by send() but not yet handed to the kernel. */
  readonly queuedBytes: number;
  readonly closed: boolean;
  onPacket: (packet: Buffer) => void;
  onDrain: () => void;
  onClose: (error: BraidError | undefined) => void;
  close(): void;
}
