import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BraidListener } from '../../../core/api/listener.js';
import {
  addClientKey,
  loadClientKeys,
  loadOrCreateServerIdentity,
} from '../../../core/handshake/identity-store.js';
import { formatInvite } from '../../../core/handshake/invite.js';
import type { Config } from '../../../core/session/config.js';
import type { Logger } from '../../../core/util/log.js';

/**
 * The server side shared by the lab's Braid tools (braid-bulk.ts, braid-messages.ts):
 * a Braid listener with a fresh identity and one client key in a temporary folder,
 * `attach` wires its sessions before any client can arrive, then one line
 * {"event":"listening","invite":...} on stdout; the end of stdin closes it (the runner
 * ends stdin when the scenario is done). The folder goes when the process exits: at the
 * end of stdin, on SIGTERM or SIGINT (a runner that gives up, Ctrl-C), on an error.
 */
export async function serveLabRelay(options: {
  host: string;
  addresses: string[];
  logger: Logger;
  config?: Partial<Config>;
  attach: (listener: BraidListener) => void;
}): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'braid-lab-relay-'));
  process.once('exit', () => rmSync(stateDir, { recursive: true, force: true }));
  process.once('SIGTERM', () => process.exit(143));
  process.once('SIGINT', () => process.exit(130));
  const identity = loadOrCreateServerIdentity(stateDir);
  const key = addClientKey(stateDir, 'lab');
  const listener = await BraidListener.listen({
    host: options.host,
    port: 0,
    addresses: options.addresses.length > 0 ? options.addresses : [options.host],
    identity,
    clients: () => loadClientKeys(stateDir),
    logger: options.logger,
    ...(options.config === undefined ? {} : { config: options.config }),
  });
  options.attach(listener);
  const invite = formatInvite({
    host: options.host,
    port: listener.port,
    fingerprint: identity.fingerprint,
    keyId: key.keyId,
    key: key.key,
  });
  process.stdout.write(JSON.stringify({ event: 'listening', invite }) + '\n');
  process.stdin
    .on('end', () => {
      void listener.close().then(() => process.exit(0));
    })
    .resume();
}
