import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { BraidListener } from '../../core/api/listener.js';
import {
  addClientKey,
  loadClientKeys,
  loadOrCreateServerIdentity,
} from '../../core/handshake/identity-store.js';
import { formatInvite } from '../../core/handshake/invite.js';
import { createLogger } from '../../core/util/log.js';
import type { Config } from '../../core/session/config.js';

/**
 * A bare Braid listener on 127.0.0.1 whose sessions the test serves itself (no relay
 * targets in the way), with its own temporary keys, for the tests of a `describe`.
 */
export function useListener(
  config: Partial<Config> = {},
): () => { listener: BraidListener; invite: string } {
  let state: { listener: BraidListener; invite: string; dir: string } | undefined;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'braid-test-listener-'));
    const identity = loadOrCreateServerIdentity(dir);
    const key = addClientKey(dir, 'test');
    const listener = await BraidListener.listen({
      host: '127.0.0.1',
      port: 0,
      identity,
      clients: () => loadClientKeys(dir),
      logger: createLogger({ level: 'error' }),
      config,
    });
    const invite = formatInvite({
      host: '127.0.0.1',
      port: listener.port,
      fingerprint: identity.fingerprint,
      keyId: key.keyId,
      key: key.key,
    });
    state = { listener, invite, dir };
  });
  afterAll(async () => {
    await state?.listener.close();
    if (state !== undefined) rmSync(state.dir, { recursive: true, force: true });
  });
  return () => {
    if (state === undefined)
      throw new Error('useListener(): not started yet (use it inside a test)');
    return state;
  };
}
