import { describe, expect, it } from 'vitest';
import { bareAssociation, sinkSubflow } from '../../support/bare-association.js';
import { deriveAssociationSecrets } from '../../../core/handshake/keys.js';
import { PacketProtection } from '../../../core/transport/packet-protection.js';
import { ManualClock } from '../../../core/util/clock.js';
import { BraidError } from '../../../core/util/errors.js';
import { decodeFrames } from '../../../core/wire/decode.js';
import type { Frame } from '../../../core/wire/frame.js';
import { decodeHeader } from '../../../core/wire/packet-header.js';

// The keys bareAssociation uses: this test reads what the client put on the wire.
const secrets = deriveAssociationSecrets(Buffer.alloc(32, 3), Buffer.alloc(8, 4));

/** The frames of a packet the client sent on `pathId`. */
function framesOf(packet: Buffer, pathId: number): Frame[] {
  const keys = secrets.pathKeys(pathId, 'client');
  const header = decodeHeader(packet);
  if (!header.ok) throw header.error;
  const plain = new PacketProtection(keys.receive, keys.send).open(
    packet,
    header.value.length,
    header.value.header.packetNumber,
  );
  if (plain instanceof BraidError) throw plain;
  const frames = decodeFrames(plain);
  if (!frames.ok) throw frames.error;
  return frames.value;
}

describe('closing an association', () => {
  it("sends every path's ACK in each closing packet, ahead of the close", () => {
    const clock = new ManualClock(1000);
    const assoc = bareAssociation(clock);
    const sentA: Buffer[] = [];
    const sentB: Buffer[] = [];
    const a = assoc.addPath(0, sinkSubflow('10.0.0.1', sentA), 'active');
    assoc.addPath(1, sinkSubflow('10.0.0.2', sentB), 'active');
    // The peer's last packet (its FIN, say) came in on path 0 and is not acknowledged yet.
    a.recovery.onPacketReceived(7, true);
    a.ackPending = true;
    assoc.close();
    for (const [sent, pathId] of [
      [sentA, 0],
      [sentB, 1],
    ] as const) {
      expect(sent, `path ${pathId}`).toHaveLength(1);
      const frames = framesOf(sent[0]!, pathId);
      const acks = frames.filter((f) => f.type === 'ack');
      expect(
        acks.map((f) => [f.pathId, f.ranges]),
        `path ${pathId}`,
      ).toContainEqual([0, [{ first: 7, last: 7 }]]);
      // The ACKs come first: the peer has taken them in when the close ends its side.
      expect(frames.at(-1)).toMatchObject({ type: 'error', code: 0 });
    }
  });
});
