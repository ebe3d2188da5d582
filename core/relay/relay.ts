import { createHash, randomBytes } from 'node:crypto';
import {
  addClientKey,
  loadClientKeys,
  loadOrCreateServerIdentity,
  type ClientKey,
} from '../handshake/identity-store.js';
import { formatInvite } from '../handshake/invite.js';
import type { TransportKind } from '../wire/frame.js';
import { BraidListener } from '../api/listener.js';
import type { BraidStream } from '../api/braid-stream.js';
import type { Config } from '../session/config.js';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';

export interface RelayOptions {
  /** Folder for the key, certificate and client keys (created 0700). */
  stateDir: string;
  host: string;
  port: number;
  /** Addresses advertised for data paths (the relay's n addresses); default [host]. */
  addresses?: string[];
  transports?: TransportKind[];
  config?: Partial<Config>;
  logger?: Logger;
}

export interface Relay {
  listener: BraidListener;
  fingerprint: string;
  /** Invite for each client key, in the order of the key store. */
  invites: Array<{ name: string; invite: string }>;
  close(): Promise<void>;
}

/** The report a sink sends back once the sender ended its stream. */
export interface SinkReport {
  bytes: number;
  sha256: string;
  ms: number;
}

/**
 * `braid relay`: the far end of associations. At this stage it terminates sessions
 * itself: target "sink" counts and hashes what arrives and answers with a
 * SinkReport line; "echo" sends everything back; "source:<ms>" sends pseudo-random
 * bytes for that many milliseconds (download benchmarks). Forwarding to the Internet comes
 * with the proxy/relay issue; other targets are reset with a clear reason.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const log = (options.logger ?? createLogger()).child({ component: 'relay' });
  const identity = loadOrCreateServerIdentity(options.stateDir);
  if (identity.created)
    log.info('created relay identity', {
      dir: options.stateDir,
      fingerprint: identity.fingerprint,
    });
  let clients = loadClientKeys(options.stateDir);
  if (clients.length === 0) {
    addClientKey(options.stateDir, 'default');
    clients = loadClientKeys(options.stateDir);
  }
  const listener = await BraidListener.listen({
    host: options.host,
    port: options.port,
    addresses: options.addresses,
    transports: options.transports,
    identity,
    // Read at each HELLO so that keys added while running take effect.
    clients: (): ClientKey[] => loadClientKeys(options.stateDir),
    config: options.config,
    logger: log,
  });
  listener.on('stream', (stream) => serveStream(stream, log));
  const host = options.host;
  const invites = clients.map((c) => ({
    name: c.name,
    invite: formatInvite({
      host,
      port: listener.port,
      fingerprint: identity.fingerprint,
      keyId: c.keyId,
      key: c.key,
    }),
  }));
  return {
    listener,
    fingerprint: identity.fingerprint,
    invites,
    close: () => listener.close(),
  };
}

/** Resolves on 'drain' or 'close', removing both listeners (a race of two once() calls leaks the loser). */
function drainOrClose(stream: BraidStream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** Download benchmark: pseudo-random bytes for `ms` milliseconds, then end of stream. */
async function sendFor(stream: BraidStream, ms: number): Promise<void> {
  const block = randomBytes(64 * 1024);
  const until = performance.now() + ms;
  // Whatever the peer sends (nothing, normally) is read and dropped.
  stream.resume();
  while (performance.now() < until && !stream.destroyed) {
    if (!stream.write(block)) await drainOrClose(stream);
  }
  if (!stream.destroyed) stream.end();
}

function serveStream(stream: BraidStream, log: Logger): void {
  const target = stream.session.target;
  stream.on('error', (err) =>
    log.info('session ended with error', { session: stream.sessionId, ...errorFields(err) }),
  );
  if (target === 'sink') {
    const started = performance.now();
    const hash = createHash('sha256');
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    stream.on('end', () => {
      const report: SinkReport = {
        bytes,
        sha256: hash.digest('hex'),
        ms: performance.now() - started,
      };
      stream.end(JSON.stringify(report) + '\n');
    });
    return;
  }
  if (target === 'echo') {
    stream.pipe(stream);
    return;
  }
  const source = /^source:(\d{1,7})$/.exec(target);
  if (source !== null) {
    sendFor(stream, Number(source[1])).catch((err: unknown) =>
      log.info('source session ended early', { session: stream.sessionId, ...errorFields(err) }),
    );
    return;
  }
  stream.destroy(
    new BraidError('BRAID_ERR_USAGE', 'this relay does not forward sessions yet', {
      value: target,
    }),
  );
}
