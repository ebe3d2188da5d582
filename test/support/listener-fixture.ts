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
import { createLogger, type Logger } from '../../core/util/log.js';
import type { Config } from '../../core/session/config.js';

export interface TestListener {
  listener: BraidListener;
  invite: string;
  /** Closes the listener and removes its keys. */
  close(): Promise<void>;
}

/**
 * A bare Braid listener on 127.0.0.1 whose sessions the caller serves itself (no relay
 * targets in the way), with its own temporary keys and one client key in the invite.
 */
export async function openTestListener(
  config: Partial<Config> = {},
  logger: Logger = createLogger({ level: 'error' }),
): Promise<TestListener> {
  const dir = mkdtempSync(join(tmpdir(), 'braid-test-listener-'));
  try {
    const identity = loadOrCreateServerIdentity(dir);
    const key = addClientKey(dir, 'test');
    const listener = await BraidListener.listen({
      host: '127.0.0.1',
      port: 0,
      identity,
      clients: () => loadClientKeys(dir),
      logger,
      config,
    });
    const invite = formatInvite({
      host: '127.0.0.1',
      port: listener.port,
      fingerprint: identity.fingerprint,
      keyId: key.keyId,
      key: key.key,
    });
    return {
      listener,
      invite,
      close: async () => {
        await listener.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** openTestListener() for the tests of a `describe`: started before them, closed after. */
export function useListener(config: Partial<Config> = {}): () => TestListener {
  let state: TestListener | undefined;
  beforeAll(async () => {
    state = await openTestListener(config);
  });
  afterAll(async () => {
    await state?.close();
  });
  return () => {
    if (state === undefined)
      throw new Error('useListener(): not started yet (use it inside a test)');
    return state;
  };
}
