/**
 * Graceful shutdown, first step (issue 6 item 5): the relay's BraidListener stops
 * accepting new associations while the open ones go on. Real relay, real client
 * associations over loopback UDP.
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import { createLogger } from '../../core/util/log.js';
import { withRelay } from '../support/relay-fixture.js';

const quiet = createLogger({ level: 'error' });

async function connectClient(invite: string): Promise<BraidClient> {
  const r = await BraidClient.connect({ invite, via: ['127.0.0.2'], logger: quiet });
  if (r.kind !== 'braid') throw new Error('expected a Braid association');
  return r.client;
}

/** Echo one message through the relay's "echo" target on a new session of `client`. */
async function echoOnce(client: BraidClient, text: string): Promise<string> {
  const stream = client.openStream({ target: 'echo' });
  stream.write(text);
  const [chunk] = (await once(stream, 'data')) as [Buffer];
  stream.destroy();
  return chunk.toString();
}

/** True when a new client is turned away: connect fails, or its association closes soon. */
async function refused(invite: string): Promise<boolean> {
  return connectClient(invite).then(
    (newcomer) =>
      Promise.race([
        once(newcomer.association, 'closed').then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
      ]).finally(() => newcomer.close()),
    () => true,
  );
}

describe('BraidListener.stopAccepting', () => {
  it('turns new associations away while an open one keeps its sessions and opens new ones', async () => {
    const relay = await withRelay();
    const client = await connectClient(relay.invite);
    try {
      const open = client.openStream({ target: 'echo' });
      open.write('before');
      await once(open, 'data');
      expect(relay.listener.accepting).toBe(true);
      relay.listener.stopAccepting('test drain');
      expect(relay.listener.accepting).toBe(false);
      expect(await refused(relay.invite)).toBe(true);
      expect(relay.listener.stats.associationsRefused).toBeGreaterThanOrEqual(1);
      // The open association: its open session and a new session both still work.
      open.write('after');
      const [again] = (await once(open, 'data')) as [Buffer];
      expect(again.toString()).toBe('after');
      expect(await echoOnce(client, 'new session')).toBe('new session');
      expect(relay.listener.associations.size).toBe(1);
      open.destroy();
    } finally {
      client.close();
      await relay.dispose();
    }
  });

  it('is what relay.shutdown uses: new associations are refused during the drain', async () => {
    const relay = await withRelay();
    const client = await connectClient(relay.invite);
    try {
      const open = client.openStream({ target: 'echo' });
      open.write('x');
      await once(open, 'data');
      const stopping = relay.shutdown(30_000);
      expect(relay.listener.accepting).toBe(false);
      expect(await refused(relay.invite)).toBe(true);
      open.end();
      await stopping;
      expect(relay.openSessions).toBe(0);
    } finally {
      client.close();
      await relay.dispose();
    }
  });
});
