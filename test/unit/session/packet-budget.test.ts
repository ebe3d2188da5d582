import { describe, expect, it } from 'vitest';
import { bareAssociation, sinkSubflow } from '../../support/bare-association.js';
import { ManualClock } from '../../../core/util/clock.js';
import { decodeHeader } from '../../../core/wire/packet-header.js';

const SIZE = 1452;

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('packet budget', () => {
  // The header's packet number is a varint: 1 byte below 64, 2 below 16384, then 4.
  it.each([
    ['1 to 2', 58],
    ['2 to 4', 16_378],
  ])(
    'fills every data packet to the path size exactly, as its packet number grows from %s bytes',
    async (_name, firstPn) => {
      const clock = new ManualClock(1000);
      const assoc = bareAssociation(clock);
      const sent: Buffer[] = [];
      const path = assoc.addPath(0, sinkSubflow('10.0.0.1', sent, SIZE), 'active');
      // Packet numbers used up by packets that need no acknowledgement.
      const r = path.recovery;
      while (r.upcomingPacketNumber < firstPn)
        r.onPacketSent(r.nextPacketNumber(), 0, false, {
          chunks: null,
          control: null,
          messages: null,
        });
      const session = assoc.openSession();
      // Offsets past 16383 all take 4 bytes, as the frame header's sizing assumes
      // (streamFrameHeaderLength): the first 16 KiB count as already sent.
      session.send.write(Buffer.alloc(16_384, 7));
      while (session.send.nextRange(4096) !== undefined);
      session.send.write(Buffer.alloc(200_000, 7));
      for (let k = 0; k < 5; k++) await turn();
      const data = sent.filter((p) => {
        const h = decodeHeader(p);
        return h.ok && h.value.header.packetNumber >= firstPn;
      });
      // The initial window (10 packets) goes out, across the varint boundary.
      expect(data.length).toBeGreaterThanOrEqual(8);
      const numbers = data.map((p) => {
        const h = decodeHeader(p);
        if (!h.ok) throw h.error;
        return h.value.header.packetNumber;
      });
      expect(Math.max(...numbers)).toBeGreaterThan(firstPn + 6);
      for (const p of data) expect(p.length).toBe(SIZE);
      assoc.close();
    },
  );
});
