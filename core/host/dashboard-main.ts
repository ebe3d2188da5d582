import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BraidHost } from './host.js';
import { startDashboardServer } from './dashboard-server.js';
import { BraidError, isBraidError } from '../util/errors.js';
import { createLogger } from '../util/log.js';

const HELP = `npm run dashboard -- [--live] [--uplinks 3] [--port 0] [--settings FILE]
  Starts the engine (core/host) and the headless dashboard server on 127.0.0.1 and
  prints the dashboard's URL with its access token. Without --live it runs the demo:
  an embedded relay and loopback uplinks 127.0.0.2.. (udp, udp, tcp, udp) behind
  emulated links, with apps whose traffic varies. --live watches the real interfaces
  and connects to the relay of the saved invite (Settings view).
  --settings defaults to ~/.braid/dashboard-settings.json in live mode and to none
  (in memory) in demo mode.
`;

/** The built renderer, next to the sources: vite's outDir (renderer/vite.config.ts). */
export const RENDERER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../out/renderer');

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      live: { type: 'boolean', default: false },
      uplinks: { type: 'string', default: '3' },
      port: { type: 'string', default: '0' },
      settings: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new BraidError('BRAID_ERR_USAGE', `--port must be 0..65535`, { value: values.port });
  if (!existsSync(join(RENDERER_DIR, 'index.html')))
    throw new BraidError(
      'BRAID_ERR_USAGE',
      'the dashboard is not built: run npm run build:renderer',
    );
  const logger = createLogger();
  const settingsFile =
    values.settings ??
    (values.live ? join(homedir(), '.braid', 'dashboard-settings.json') : undefined);
  const host = await BraidHost.start({
    mode: values.live ? 'live' : 'demo',
    demoUplinks: Number(values.uplinks),
    logger,
    ...(settingsFile === undefined ? {} : { settingsFile }),
  });
  const server = await startDashboardServer({
    engine: host,
    staticDir: RENDERER_DIR,
    port,
    logger,
  });
  process.stdout.write(
    `Braid dashboard (${host.mode}) at\n  ${server.url}\nThe token in the URL is the only key; Ctrl-C stops.\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await host.stop();
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(
      `braid dashboard: ${isBraidError(err) ? `${err.message} [${err.code}]` : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  });
}
