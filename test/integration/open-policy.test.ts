import { afterEach, describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import type { BraidMessageSocket } from '../../core/api/message-socket.js';
import { sessionSocket } from '../../core/api/session-socket.js';
import { createLogger } from '../../core/util/log.js';
import { useListener } from '../support/listener-fixture.js';

const quiet = createLogger({ level: 'error' });

/**
 * The opener's sliders and tolerances travel in OPEN (OPEN_POLICY) so that the far
 * side, which sends the other direction (a relay's downloads), schedules by them too;
 * and unreliable-ordered messages carry their send stamp (DATAGRAM_STAMPED).
 */
describe('the opener’s policy and send stamps reach the peer over a real association', () => {
  const serverOf = useListener();
  const clients: BraidClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  async function connect(): Promise<BraidClient> {
    const result = await BraidClient.connect({
      invite: serverOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      transports: ['udp', 'udp'],
      logger: quiet,
    });
    if (result.kind !== 'braid') throw new Error('expected a Braid peer');
    clients.push(result.client);
    return result.client;
  }

  function nextRemote(): Promise<{ socket: BraidMessageSocket; first: Promise<Buffer> }> {
    return new Promise((resolve) => {
      serverOf().listener.once('messages', (socket) => {
        socket.on('error', () => undefined);
        const first = new Promise<Buffer>((r) => socket.once('message', r));
        resolve({ socket, first });
      });
    });
  }

  it('a peer-opened session’s combiner has the opener’s weights and tolerances', async () => {
    const client = await connect();
    const remoteP = nextRemote();
    const local = client.openMessages({
      semantics: 'unreliable-ordered',
      priorities: ['latency', 'loss', 'throughput'],
      deadlineMs: 80,
      policy: {
        lossVsThroughput: 0.9,
        latencyVsThroughput: 0.125,
        epsilon: { latencyMs: 2, jitterMs: 3.5, loss: 0.01 },
      },
    });
    local.send(Buffer.from('hello'));
    const { socket, first } = await remoteP;
    expect((await first).toString()).toBe('hello');
    const peer = socket.session;
    expect(peer.local).toBe(false);
    expect(peer.objectivePolicy).toEqual({
      lossVsThroughput: 0.9,
      latencyVsThroughput: 0.125,
      epsilon: { latencyMs: 2, jitterMs: 3.5, loss: 0.01 },
    });
    expect(peer.scheduler.weight('loss', 0)).toBeCloseTo(0.9, 9);
    expect(peer.scheduler.weight('latency', 0)).toBeCloseTo(0.125, 9);
    expect(peer.scheduler.weight('jitter', 0)).toBe(0); // not ranked
    // The message came stamped: the peer's playout clock has a sample.
    expect(peer.msg?.recv.playoutClock.minSample).toBeDefined();
    expect(peer.msg?.recv.stats.delivered).toBe(1);
  });

  it('without a policy the OPEN is the old form and the peer keeps its defaults', async () => {
    const client = await connect();
    const remoteP = nextRemote();
    const local = client.openMessages({
      semantics: 'reliable-unordered',
      priorities: ['loss', 'latency', 'throughput'],
    });
    expect(local.session.openPolicy).toBeUndefined();
    local.send(Buffer.from('x'));
    const { socket, first } = await remoteP;
    await first;
    const peer = socket.session;
    expect(peer.objectivePolicy).toEqual({});
    expect(peer.scheduler.weight('loss', 0)).toBe(0.5);
    expect(peer.scheduler.weight('latency', 0)).toBe(0.5);
    // Not unreliable-ordered: no stamps.
    expect(peer.msg?.recv.playoutClock.minSample).toBeUndefined();
  });

  it('a rule changed after OPEN (POLICY) reaches the peer’s scheduler; an older one does not undo it', async () => {
    const client = await connect();
    const remoteP = nextRemote();
    const local = client.openMessages({
      semantics: 'reliable-unordered',
      priorities: ['loss', 'throughput'],
      policy: { lossVsThroughput: 0.2 },
    });
    local.send(Buffer.from('before'));
    const { socket, first } = await remoteP;
    await first;
    const peer = socket.session;
    expect(peer.scheduler.weight('loss', 0)).toBeCloseTo(0.2, 9);
    // The user moves the slider and puts latency first while the session runs.
    local.session.setPolicy(['latency', 'loss', 'throughput'], {
      lossVsThroughput: 0.9,
      latencyVsThroughput: 0.7,
    });
    const second = new Promise<Buffer>((r) => socket.once('message', r));
    local.send(Buffer.from('after'));
    expect((await second).toString()).toBe('after');
    await expect.poll(() => peer.scheduler.weight('loss', 0)).toBeCloseTo(0.9, 9);
    expect(peer.scheduler.weight('latency', 0)).toBeCloseTo(0.7, 9);
    expect(peer.priorities).toEqual(['latency', 'loss', 'throughput']);
    expect(peer.objectivePolicy).toEqual({ lossVsThroughput: 0.9, latencyVsThroughput: 0.7 });
    // A stale copy (a retransmission of sequence 1 after sequence 2) is ignored.
    const stale = { ...local.session.policyFrame()!, sequence: 0 };
    stale.policy = { lossVsThroughputPpm: 100_000 };
    peer.onPeerPolicy(stale);
    expect(peer.scheduler.weight('loss', 0)).toBeCloseTo(0.9, 9);
  });

  it('sessionSocket().connect passes the policy through to the peer', async () => {
    const socket = sessionSocket('unreliable-unordered', ['loss', 'throughput']);
    const remoteP = nextRemote();
    const messages = await socket.connect(serverOf().invite, {
      via: ['127.0.0.2'],
      logger: quiet,
      policy: { lossVsThroughput: 1 },
    });
    messages.send('x');
    const { socket: remote, first } = await remoteP;
    await first;
    expect(remote.session.objectivePolicy).toEqual({ lossVsThroughput: 1 });
    expect(remote.session.scheduler.weight('loss', 0)).toBe(1);
    await socket.close();
  });
});
