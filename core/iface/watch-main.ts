/**
 * Prints interface watcher events as JSON lines on stdout, one object per event:
 *   {"event":"ready","source":"netlink","snapshot":[...]}
 *   {"event":"added"|"removed","uplink":{...}}
 *   {"event":"changed","uplink":{...},"previous":{...}}
 *   {"event":"snapshot","snapshot":[...]}   (answer to a "snapshot" line on stdin)
 * Stops when stdin ends. Logs go to stderr (BRAID_LOG=debug shows reaction times).
 *
 *   tsx core/iface/watch-main.ts [--ignore a,b*] [--poll] [--probe-interval MS]
 * The integration test runs it inside a network namespace.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createLogger } from '../util/log.js';
import { InterfaceWatcher } from './interface-watcher.js';

const { values } = parseArgs({
  options: {
    ignore: { type: 'string' },
    poll: { type: 'boolean', default: false },
    'probe-interval': { type: 'string' },
  },
});

const print = (value: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(value) + '\n');
};

const watcher = new InterfaceWatcher({
  logger: createLogger({ fields: { component: 'iface' } }),
  ...(values.ignore === undefined ? {} : { ignore: values.ignore.split(',') }),
  source: values.poll ? 'poll' : 'auto',
  ...(values['probe-interval'] === undefined
    ? {}
    : { gatewayProbeIntervalMs: Number(values['probe-interval']) }),
});
watcher.on('added', (uplink) => print({ event: 'added', uplink }));
watcher.on('removed', (uplink) => print({ event: 'removed', uplink }));
watcher.on('changed', (uplink, previous) => print({ event: 'changed', uplink, previous }));

await watcher.start();
print({ event: 'ready', source: watcher.source, snapshot: watcher.snapshot() });

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (line.trim() === 'snapshot') print({ event: 'snapshot', snapshot: watcher.snapshot() });
});
input.on('close', () => {
  void watcher.stop().then(() => process.exit(0));
});
