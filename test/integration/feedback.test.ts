import { describe, expect, it } from 'vitest';
import { BraidClient } from '../../core/api/client.js';
import type { BraidMessageSocket } from '../../core/api/message-socket.js';
import { createLogger } from '../../core/util/log.js';
import { useListener } from '../support/listener-fixture.js';

const quiet = createLogger({ level: 'error' });

describe('application feedback crosses to the peer (paper §III-C)', () => {
  const serverOf = useListener();

  it("a report on one side raises the reported objective's weight in the peer's scheduler", async () => {
    const remote = new Promise<BraidMessageSocket>((resolve) =>
      serverOf().listener.once('messages', (socket) => resolve(socket)),
    );
    const r = await BraidClient.connect({
      invite: serverOf().invite,
      via: ['127.0.0.2', '127.0.0.3'],
      logger: quiet,
    });
    if (r.kind !== 'braid') throw new Error('expected Braid');
    const client = r.client;
    try {
      const local = client.openMessages({
        semantics: 'unreliable-unordered',
        priorities: ['throughput', 'latency'],
      });
      const peer = await remote;
      const before = peer.session.scheduler.weight('latency', performance.now());
      expect(before).toBe(0); // latency ranked after throughput: no weight
      local.feedback({ objective: 'latency', severity: 0.8 });
      const deadline = performance.now() + 3000;
      let after = before;
      while (performance.now() < deadline) {
        after = peer.session.scheduler.weight('latency', performance.now());
        if (after > 0.5) break;
        await new Promise((res) => setTimeout(res, 10));
      }
      expect(after).toBeGreaterThan(0.5);
      expect(peer.session.scheduler.stages).toContain('latency');
      local.destroy();
    } finally {
      client.close();
    }
  });
});
