import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BraidClient } from '../../../core/api/client.js';
import type { BraidStream } from '../../../core/api/braid-stream.js';
import { verifyConfig, type Config } from '../../../core/session/config.js';
import { BraidError } from '../../../core/util/errors.js';
import { createLogger, errorFields } from '../../../core/util/log.js';
import type { TransportKind } from '../../../core/wire/frame.js';
import {
  DEFAULT_MESSAGES,
  messageResult,
  pump,
  receive,
  Receiver,
  sendMessages,
  type BulkResult,
  type MessagePlan,
} from './bulk.js';
import { MessageReceiver } from './payload.js';

import { serveLabRelay } from './lab-relay.js';
import { warmUp } from './warm-up.js';
/**
 * Braid's side of the lab benchmark, with the same modes and output as bulk.ts so
 * the runner treats every system alike.
 *   server --host H [--addresses A,B]   a Braid listener (keys in a temp folder) that
 *                                        serves the lab's targets; prints
 *                                        {"event":"listening","invite":...}
 *   client --invite I --via A,B,.. (--ms D | --bytes N | --messages N) [--transport udp,...]
 *                                        downloads over one path per --via address;
 *                                        prints {"event":"connected"}, then a BulkResult.
 * Both take [--cc auto|cubic|newreno|bbr] [--uncoupled]: the congestion controller of
 * the UDP paths and the LIA opt-out (config.congestion, config.coupledCongestion). In a
 * download the server sends, so its options are the ones that shape the data.
 * Both take [--warm-up BYTES]: first download that much between a listener and a client
 * of this process over loopback (warm-up.ts says why), before listening or connecting.
 * Targets (the session's target string): `lab:time` sends the position pattern until
 * the client closes; `lab:bytes:<n>` sends n bytes of it and ends;
 * `lab:messages:<count>:<intervalMs>:<size>` sends stamped records (payload.ts).
 * The relay's own `source:` target sends random bytes, which cannot be checked at the
 * far end, hence this server.
 */
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string' },
    addresses: { type: 'string' },
    invite: { type: 'string' },
    via: { type: 'string' },
    transport: { type: 'string', default: 'udp' },
    ms: { type: 'string' },
    bytes: { type: 'string' },
    messages: { type: 'string' },
    cc: { type: 'string' },
    uncoupled: { type: 'boolean', default: false },
    'warm-up': { type: 'string' },
  },
});
const logger = createLogger({ level: 'warn' });
const list = (s: string | undefined): string[] => (s ?? '').split(',').filter((x) => x.length > 0);

/** The association config from --cc and --uncoupled; verifyConfig rejects a bad --cc. */
function labConfig(): Partial<Config> {
  const config: Partial<Config> = {};
  if (values.cc !== undefined) config.congestion = values.cc as Config['congestion'];
  if (values.uncoupled === true) config.coupledCongestion = false;
  return verifyConfig(config);
}

function serveStream(stream: BraidStream): void {
  const target = stream.session.target;
  // A time-mode client closes its association when its window ends: the reset that
  // follows is the normal end of the run, so it is only logged (at info).
  stream.on('error', (err) =>
    logger.info('lab session ended with error', { target, ...errorFields(err) }),
  );
  stream.resume();
  if (target === 'lab:time') return pump(stream, Infinity);
  const bytes = /^lab:bytes:(\d{1,12})$/.exec(target);
  if (bytes !== null) return pump(stream, Number(bytes[1]));
  const msgs = /^lab:messages:(\d{1,7}):(\d{1,5}):(\d{2,6})$/.exec(target);
  if (msgs !== null) {
    const plan: MessagePlan = {
      count: Number(msgs[1]),
      intervalMs: Number(msgs[2]),
      size: Number(msgs[3]),
    };
    void sendMessages(stream, plan);
    return;
  }
  stream.destroy(new BraidError('BRAID_ERR_USAGE', 'unknown lab target', { value: target }));
}

/** --warm-up: runs the engine in this process first (warm-up.ts). */
async function warmUpIfAsked(): Promise<void> {
  const raw = values['warm-up'];
  if (raw === undefined) return;
  const bytes = Number(raw);
  if (!Number.isSafeInteger(bytes) || bytes <= 0)
    throw new BraidError('BRAID_ERR_USAGE', '--warm-up takes a positive byte count', {
      value: raw,
    });
  await warmUp(bytes, logger);
}

async function server(): Promise<void> {
  await warmUpIfAsked();
  const host = values.host ?? '0.0.0.0';
  await serveLabRelay({
    host,
    addresses: list(values.addresses),
    logger,
    config: labConfig(),
    attach: (listener) =>
      listener.on('stream', (stream, association) => {
        serveStream(stream);
        // Diagnostics: the sending side's view of its paths (controller, cwnd, loss) at the end.
        const file = process.env['BRAID_LAB_PATHS_LOG'];
        if (file !== undefined)
          stream.once('close', () =>
            appendFileSync(
              file,
              JSON.stringify({ target: stream.session.target, paths: association.pathSummary() }) +
                '\n',
            ),
          );
      }),
  });
}

async function client(): Promise<BulkResult> {
  const modes = [values.ms, values.bytes, values.messages].filter((v) => v !== undefined);
  if (modes.length !== 1 || values.invite === undefined)
    throw new BraidError(
      'BRAID_ERR_USAGE',
      'usage: braid-bulk client --invite I --via A,B (--ms N | --bytes N | --messages N)',
    );
  await warmUpIfAsked();
  const start = performance.now();
  const connected = await BraidClient.connect({
    invite: values.invite,
    via: list(values.via),
    transports: list(values.transport) as TransportKind[],
    logger,
    config: labConfig(),
  });
  if (connected.kind !== 'braid')
    throw new BraidError('BRAID_ERR_HANDSHAKE', `relay answered as legacy: ${connected.reason}`);
  const braid = connected.client;
  const requested = performance.now();
  const connectMs = requested - start;
  const plan =
    values.messages === undefined
      ? undefined
      : { count: Number(values.messages), ...DEFAULT_MESSAGES };
  const target =
    values.ms !== undefined
      ? 'lab:time'
      : values.bytes !== undefined
        ? `lab:bytes:${Number(values.bytes)}`
        : `lab:messages:${plan!.count}:${plan!.intervalMs}:${plan!.size}`;
  const stream = braid.openStream({ target });
  process.stdout.write(JSON.stringify({ event: 'connected' }) + '\n');
  stream.end();
  const failed = new Promise<never>((_, reject) => stream.once('error', reject));
  let result: BulkResult;
  if (plan !== undefined) {
    const rx = new MessageReceiver(plan.size, plan.count);
    stream.on('data', (chunk: Buffer) => rx.push(chunk));
    await Promise.race([new Promise((resolve) => stream.once('end', resolve)), failed]);
    result = { ...new Receiver(start).result(0), connectMs, messages: messageResult(rx) };
  } else if (values.ms !== undefined) {
    const ms = Number(values.ms);
    const rx = await Promise.race([receive(stream, start, ms), failed]);
    result = { ...rx.result(ms), connectMs };
  } else {
    const bytes = Number(values.bytes);
    const rx = await Promise.race([receive(stream, start, undefined), failed]);
    result = { ...rx.result(undefined, rx.last - requested, bytes), connectMs };
  }
  const paths = braid.association.pathSummary();
  braid.close();
  return { ...result, paths } as BulkResult;
}

if (positionals[0] === 'server') {
  await server();
} else if (positionals[0] === 'client') {
  process.stdout.write(JSON.stringify(await client()) + '\n');
  process.exit(0);
} else {
  process.stderr.write('usage: braid-bulk server|client ...\n');
  process.exit(2);
}
