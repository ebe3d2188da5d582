import { describe, expect, it } from 'vitest';
import { bareAssociation, sinkSubflow } from '../../support/bare-association.js';
import type { Path, SentRecord } from '../../../core/session/path.js';
import type { Session } from '../../../core/session/session.js';
import { ManualClock } from '../../../core/util/clock.js';
import { BraidError } from '../../../core/util/errors.js';

/** A path whose RTT samples were all `rtt` ms. */
function measured(clock: ManualClock, path: Path, rtt: number): void {
  const r = path.recovery;
  for (let k = 0; k < 4; k++) {
    const pn = r.nextPacketNumber();
    r.onPacketSent(pn, 100, true, { chunks: null, control: null, messages: null });
    clock.advance(rtt);
    const res = r.onAck([{ first: pn, last: pn }], 0);
    if (res instanceof BraidError) throw res;
  }
}

/** Records a packet of `session` bytes [offset, offset + length) as sent on `path` at `at`. */
function carry(path: Path, session: Session, offset: number, length: number, fin = false): void {
  const record: SentRecord = {
    chunks: [{ session, offset, length, fin }],
    control: null,
    messages: null,
  };
  const r = path.recovery;
  r.onPacketSent(r.nextPacketNumber(), length + 40, true, record);
}

/**
 * A fast (10 ms) and a slow (100 ms) path, and a session that wrote 4000 bytes (and its
 * end when `fin`), all taken for sending: nothing is left but the packets in flight.
 */
function sentOnTwoPaths(fin: boolean) {
  const clock = new ManualClock(1000);
  const assoc = bareAssociation(clock);
  const fast = assoc.addPath(0, sinkSubflow('10.0.0.1'), 'active');
  const slow = assoc.addPath(1, sinkSubflow('10.0.0.2'), 'active');
  measured(clock, fast, 10);
  measured(clock, slow, 100);
  const session = assoc.openSession();
  session.send.write(Buffer.alloc(4000));
  if (fin) session.send.end();
  while (session.send.nextRange(1000) !== undefined);
  expect(session.send.hasPending).toBe(false);
  return { clock, assoc, fast, slow, session };
}

describe('tail reinjection', () => {
  it('at the end of a stream, queues again what a slower path carries that would arrive after a copy on the fastest', () => {
    const { clock, assoc, fast, slow, session } = sentOnTwoPaths(true);
    // 0-1000 left on the slow path 90 ms ago: it arrived (about 50 ms after leaving).
    carry(slow, session, 0, 1000);
    clock.advance(85);
    // 1000-2000 on the fast path 5 ms ago; 2000-4000 and the FIN on the slow one just now.
    carry(fast, session, 1000, 1000);
    clock.advance(5);
    carry(slow, session, 2000, 1000);
    carry(slow, session, 3000, 1000, true);
    (assoc as unknown as { reinjectTail(s: Session, now: number): void }).reinjectTail(
      session,
      clock.now(),
    );
    expect(session.tailChecked).toBe(true);
    expect(session.tailReinjectedBytes).toBe(2000);
    // The two late pieces (and the FIN) go again, as repairs, before anything else.
    expect(session.send.repairPending).toBe(true);
    expect(session.send.nextRange(5000)).toEqual({ offset: 2000, length: 2000, fin: true });
    expect(session.send.nextRange(5000)).toBeUndefined();
    assoc.close();
  });
});

describe('idle tail reinjection (a burst without a FIN)', () => {
  type Internals = {
    noteTail(s: Session, fin: boolean, now: number): void;
    checkIdleTails(now: number): void;
  };

  /** A session that wrote 4000 bytes, all sent: 2000-4000 just now on the slow path. */
  function burst(): { clock: ManualClock; assoc: Internals; session: Session; close(): void } {
    const { clock, assoc, fast, slow, session } = sentOnTwoPaths(false);
    carry(fast, session, 0, 2000);
    carry(slow, session, 2000, 1000);
    carry(slow, session, 3000, 1000);
    const internals = assoc as unknown as Internals;
    internals.noteTail(session, false, clock.now());
    return { clock, assoc: internals, session, close: () => assoc.close() };
  }

  it('reinjects what the slower path carries once the send buffer stayed empty for 2 ms', () => {
    const { clock, assoc, session, close } = burst();
    clock.advance(1);
    assoc.checkIdleTails(clock.now());
    expect(session.tailReinjectedBytes).toBe(0);
    clock.advance(1);
    assoc.checkIdleTails(clock.now());
    expect(session.tailReinjectedBytes).toBe(2000);
    expect(session.send.nextRange(5000)).toEqual({ offset: 2000, length: 2000, fin: false });
    // Once per tail: a later check finds nothing new.
    clock.advance(5);
    assoc.checkIdleTails(clock.now());
    expect(session.tailReinjectedBytes).toBe(2000);
    close();
  });

  it('leaves a burst alone when the application writes again within those 2 ms', () => {
    const { clock, assoc, session, close } = burst();
    clock.advance(1);
    session.write(Buffer.alloc(10));
    clock.advance(5);
    assoc.checkIdleTails(clock.now());
    expect(session.tailReinjectedBytes).toBe(0);
    expect(session.tailChecked).toBe(false);
    close();
  });

  it('is noted when a flush sends all a stream had, and a FIN looks at its tail at once instead', async () => {
    const clock = new ManualClock(1000);
    const bare = bareAssociation(clock);
    const sent: Buffer[] = [];
    bare.addPath(0, sinkSubflow('10.0.0.1', sent), 'active');
    const session = bare.openSession();
    session.write(Buffer.alloc(3000));
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent.length).toBeGreaterThan(0);
    expect(session.send.hasPending).toBe(false);
    expect(session.drainedAt).toBe(clock.now());
    expect(session.tailChecked).toBe(false);
    session.end();
    expect(session.drainedAt).toBe(-1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(session.tailChecked).toBe(true);
    bare.close();
  });
});
