import { describe, expect, it } from 'vitest';
import { Association } from '../../../core/session/association.js';
import { verifyConfig } from '../../../core/session/config.js';
import { deriveAssociationSecrets } from '../../../core/handshake/keys.js';
import type { Session } from '../../../core/session/session.js';
import { createLogger } from '../../../core/util/log.js';
import { ManualClock } from '../../../core/util/clock.js';
import type { Frame } from '../../../core/wire/frame.js';
import { BraidError } from '../../../core/util/errors.js';

/** Feeds frames to a server-side association as if they arrived on a path. */
function server(): { assoc: Association; feed: (f: Frame) => void; opened: Session[] } {
  const id = Buffer.alloc(8, 1);
  const assoc = new Association({
    role: 'server',
    secrets: deriveAssociationSecrets(Buffer.alloc(32, 2), id),
    config: verifyConfig(),
    logger: createLogger({ level: 'silent' }),
    peer: 'test',
    clock: new ManualClock(),
  });
  const opened: Session[] = [];
  assoc.on('session', (s) => opened.push(s));
  // onFrame is the dispatcher every received packet goes through.
  const dispatch = (
    assoc as unknown as { onFrame(path: unknown, f: Frame, size: number): void }
  ).onFrame.bind(assoc);
  return {
    assoc,
    feed: (f) => dispatch({ stats: { streamBytesReceived: 0 }, pending: [] }, f, 100),
    opened,
  };
}

const open = (sessionId: number): Frame => ({
  type: 'open',
  sessionId,
  semantics: 'reliable-ordered',
  priorities: ['loss'],
  target: '',
  deadlineMs: 0,
});
const data = (sessionId: number): Frame => ({
  type: 'stream',
  sessionId,
  offset: 0,
  fin: false,
  data: Buffer.from('x'),
});

describe('peer-opened sessions', () => {
  it('opens sessions whose frames arrive out of order, and never reopens a finished one', () => {
    const { assoc, feed, opened } = server();
    feed(open(4));
    feed(data(2));
    expect(assoc.sessions.has(2)).toBe(true);
    expect(assoc.sessions.get(2)!.state).toBe('awaiting-open');
    feed(open(2));
    feed(open(0));
    expect(opened.map((s) => s.id)).toEqual([4, 2, 0]);
    // Session 2 ends; late retransmissions of its frames must not bring it back.
    assoc.sessions.get(2)!.fail(new BraidError('BRAID_ERR_SESSION_RESET', 'reset by the test'));
    expect(assoc.sessions.has(2)).toBe(false);
    feed(data(2));
    feed(open(2));
    expect(assoc.sessions.has(2)).toBe(false);
    expect(opened.length).toBe(3);
  });

  it('applies a POLICY that overtook its OPEN once the OPEN arrives, and only the newest', () => {
    const { assoc, feed } = server();
    const policy = (sequence: number, loss: number): Frame => ({
      type: 'policy',
      sessionId: 2,
      sequence,
      priorities: ['latency', 'loss'],
      policy: { lossVsThroughputPpm: loss },
    });
    feed(policy(2, 800_000));
    feed(policy(1, 100_000));
    const s = assoc.sessions.get(2)!;
    expect(s.state).toBe('awaiting-open');
    feed({
      type: 'open',
      sessionId: 2,
      semantics: 'reliable-ordered',
      priorities: ['loss'],
      target: '',
      deadlineMs: 0,
      policy: { lossVsThroughputPpm: 300_000 },
    });
    expect(s.state).toBe('open');
    expect(s.priorities).toEqual(['latency', 'loss']);
    expect(s.scheduler.weight('loss', 0)).toBeCloseTo(0.8, 9);
    // A resent sequence 1 after 2 changes nothing; sequence 3 does.
    feed(policy(1, 100_000));
    expect(s.scheduler.weight('loss', 0)).toBeCloseTo(0.8, 9);
    feed(policy(3, 50_000));
    expect(s.scheduler.weight('loss', 0)).toBeCloseTo(0.05, 9);
  });

  it('closes the association when the peer skips more session ids than it may', () => {
    const { assoc, feed } = server();
    feed(open(0));
    feed(open(2 * 5000));
    expect(assoc.state).toBe('closed');
    expect(assoc.closedError?.code).toBe('BRAID_ERR_SESSION_STATE');
  });
});
