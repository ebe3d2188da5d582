import { afterAll, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRelay, type Relay, type RelayOptions } from '../../core/relay/relay.js';
import { RelayOutbound } from '../../core/proxy/relay-outbound.js';
import { RuleBook } from '../../core/proxy/rules.js';
import { SocksServer } from '../../core/proxy/socks-server.js';
import { createLogger } from '../../core/util/log.js';
import type { TransportKind } from '../../core/wire/frame.js';

/** A real relay on 127.0.0.1 with its own temporary key folder. */
export async function withRelay(
  options: Partial<RelayOptions> = {},
): Promise<Relay & { invite: string; dispose: () => Promise<void> }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'braid-test-relay-'));
  const relay = await startRelay({
    stateDir,
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ level: (process.env.BRAID_LOG as 'debug' | undefined) ?? 'error' }),
    ...options,
  });
  return {
    ...relay,
    invite: relay.invites[0]!.invite,
    dispose: async () => {
      await relay.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * One relay for the tests of a `describe` block: started before them, disposed after.
 * Returns a getter because the relay exists only once `beforeAll` ran.
 */
export function useRelay(
  options: Partial<RelayOptions> = {},
): () => Awaited<ReturnType<typeof withRelay>> {
  let relay: Awaited<ReturnType<typeof withRelay>> | undefined;
  beforeAll(async () => {
    relay = await withRelay(options);
  });
  afterAll(async () => {
    await relay?.dispose();
  });
  return () => {
    if (relay === undefined)
      throw new Error('useRelay(): the relay is not started yet (use it inside a test)');
    return relay;
  };
}

/**
 * A SOCKS5 proxy on 127.0.0.1 whose outbound is an association with `invite`'s relay
 * over `via` (default rules, quiet logs): the set-up of the proxy-through-relay tests.
 */
export async function startProxyToRelay(
  invite: string,
  via: string[],
  transports?: TransportKind[],
): Promise<SocksServer> {
  const logger = createLogger({ level: 'error' });
  const outbound = await RelayOutbound.open({
    invite,
    via,
    ...(transports === undefined ? {} : { transports }),
    logger,
  });
  return SocksServer.listen({ port: 0, outbound, rules: new RuleBook({ logger }), logger });
}
