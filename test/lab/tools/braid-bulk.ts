import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BraidClient } from '../../../core/api/client.js';
import { startRelay } from '../../../core/relay/relay.js';
import type { TransportKind } from '../../../core/wire/frame.js';
import { createLogger } from '../../../core/util/log.js';
import { Receiver } from './bulk.js';

/**
 * Braid's side of the lab benchmark, with the same output as bulk.ts so the runner
 * treats every system alike.
 *   server --host H [--addresses A,B]   runs `braid relay` (keys in a temp folder);
 *                                        prints {"event":"listening","invite":...}
 *   client --invite I --via A,B,.. --ms D [--transport udp,...]
 *                                        downloads from the relay's source:<D> target
 *                                        over one path per --via address; prints
 *                                        {"event":"connected"}, then a BulkResult.
 */
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string' },
    addresses: { type: 'string' },
    invite: { type: 'string' },
    via: { type: 'string' },
    transport: { type: 'string', default: 'udp' },
    ms: { type: 'string', default: '10000' },
    upload: { type: 'boolean', default: false },
  },
});
const logger = createLogger({ level: 'warn' });
const list = (s: string | undefined): string[] => (s ?? '').split(',').filter((x) => x.length > 0);

if (positionals[0] === 'server') {
  const host = values.host ?? '0.0.0.0';
  const relay = await startRelay({
    stateDir: mkdtempSync(join(tmpdir(), 'braid-lab-relay-')),
    host,
    port: 0,
    addresses: list(values.addresses).length > 0 ? list(values.addresses) : [host],
    logger,
  });
  process.stdout.write(
    JSON.stringify({ event: 'listening', invite: relay.invites[0]!.invite }) + '\n',
  );
  process.stdin.on('end', () => void relay.close().then(() => process.exit(0))).resume();
} else if (positionals[0] === 'client') {
  if (values.upload)
    throw new Error('braid-bulk: upload runs are not implemented; scenarios are downloads');
  const ms = Number(values.ms);
  const start = performance.now();
  const connected = await BraidClient.connect({
    invite: values.invite ?? '',
    via: list(values.via),
    transports: list(values.transport) as TransportKind[],
    logger,
  });
  if (connected.kind !== 'braid')
    throw new Error(`braid-bulk: relay answered as legacy: ${connected.reason}`);
  const client = connected.client;
  const stream = client.openStream({ target: `source:${ms}` });
  process.stdout.write(JSON.stringify({ event: 'connected' }) + '\n');
  const receiver = new Receiver(start);
  stream.on('data', (chunk: Buffer) => receiver.add(chunk.length, performance.now()));
  stream.end();
  await new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  process.stdout.write(
    JSON.stringify({ ...receiver.result(undefined), paths: client.association.pathSummary() }) +
      '\n',
  );
  client.close();
  process.exit(0);
} else {
  process.stderr.write('usage: braid-bulk server|client ...\n');
  process.exit(2);
}
