import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startRelay } from '../relay/relay.js';
import { addClientKey } from '../handshake/identity-store.js';
import { TRANSPORT_KINDS, type TransportKind } from '../wire/frame.js';
import { BraidError, isBraidError } from '../util/errors.js';
import { createLogger, type LogLevel } from '../util/log.js';
import { formatTransfer, parseSize, runTransfer } from './transfer.js';

const HELP = `braid — stripe one flow over every uplink (session-layer striping)

Usage:
  braid demo  [--bytes 100M] [--via 127.0.0.2,127.0.0.3,127.0.0.4] [--transport udp,udp,tcp]
      Starts a relay on 127.0.0.1 in a child process (its own keys in a temporary
      folder), sends pseudo-random bytes to its sink over one path per --via
      address, checks the SHA-256 and prints per-path and total goodput.
      Needs no root and no server.

  braid relay [--host 127.0.0.1] [--port 7400] [--address A,B] [--state DIR]
              [--transport udp,tcp] [--add-client NAME]
      Runs the far end of associations. On first run it creates a key pair and a
      self-signed certificate in DIR (default ~/.braid-relay, files 0600) and a
      client key; it prints one invite per client key:
        braid://host:port#<certificate sha256>?key=<key id>.<key>
      --address lists the addresses advertised for data paths (the relay's n
      addresses). --add-client NAME adds a client key, prints its invite and exits.
      Sessions with target "sink" are counted and hashed; "echo" is echoed.

  braid send <invite> --via A,B,... [--transport udp,tcp,...] [--bytes 200M] [--json]
      Opens an association to the relay of <invite>, one path from each --via
      local address (udp by default; a UDP path that cannot join falls back to
      TCP), streams --bytes to the relay's sink, verifies the SHA-256 and prints
      per-path and total goodput.

  braid --help | braid <command> --help

Environment:
  BRAID_LOG=debug|info|warn|error   structured log lines on stderr (default warn)
`;

function fail(message: string): never {
  throw new BraidError('BRAID_ERR_USAGE', message);
}

function parseTransports(text: string | undefined, count: number): TransportKind[] {
  const list = (text ?? 'udp').split(',').map((t) => t.trim());
  for (const t of list) {
    if (!(TRANSPORT_KINDS as readonly string[]).includes(t))
      fail(`unknown transport "${t}" (udp or tcp)`);
  }
  if (list.length !== 1 && list.length !== count)
    fail(`--transport needs one entry or one per --via address (${count})`);
  return list as TransportKind[];
}

function splitList(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

async function relayCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7400' },
      address: { type: 'string' },
      state: { type: 'string', default: join(process.env.HOME ?? '.', '.braid-relay') },
      transport: { type: 'string', default: 'udp,tcp' },
      'add-client': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    fail(`--port must be 0..65535, not "${values.port}"`);
  if (values['add-client'] !== undefined) {
    const key = addClientKey(values.state, values['add-client']);
    process.stdout.write(
      `added client key ${key.name} (${key.keyId}); start the relay to print its invite\n`,
    );
    return;
  }
  const addresses = splitList(values.address);
  const transports = splitList(values.transport) as TransportKind[];
  for (const t of transports)
    if (!(TRANSPORT_KINDS as readonly string[]).includes(t)) fail(`unknown transport "${t}"`);
  const relay = await startRelay({
    stateDir: values.state,
    host: values.host,
    port,
    addresses: addresses.length > 0 ? addresses : undefined,
    transports,
    logger: createLogger({ level: (process.env.BRAID_LOG as LogLevel | undefined) ?? 'info' }),
  });
  for (const { name, invite } of relay.invites) process.stdout.write(`invite ${name}: ${invite}\n`);
  process.stdout.write(`relay listening on ${values.host}:${relay.listener.port}\n`);
  // The parent (demo, bench) may be gone by the time we stop; a closed stdout is not an error then.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.stdout.write('relay stopping\n');
      void relay.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // A parent that spawned us (demo, bench) closes stdin to stop us.
    if (!process.stdin.isTTY) process.stdin.on('end', stop).resume();
  });
}

async function sendCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      via: { type: 'string' },
      transport: { type: 'string' },
      bytes: { type: 'string', default: '200M' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const invite = positionals[0] ?? fail('send needs an invite (printed by braid relay)');
  const via = splitList(values.via);
  if (via.length === 0) fail('send needs --via with at least one local address');
  const result = await runTransfer({
    invite,
    via,
    transports: parseTransports(values.transport, via.length),
    bytes: parseSize(values.bytes),
    logger: createLogger(),
  });
  process.stdout.write(values.json ? JSON.stringify(result) + '\n' : formatTransfer(result) + '\n');
  if (!result.verified) process.exitCode = 1;
}

/** Starts `braid relay` as a child process and resolves with its first invite. */
export async function spawnRelay(options: {
  stateDir: string;
  host?: string;
  port?: number;
  transports?: string;
}): Promise<{ invite: string; stop: () => Promise<void> }> {
  const main = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      main,
      'relay',
      '--state',
      options.stateDir,
      '--host',
      options.host ?? '127.0.0.1',
      '--port',
      String(options.port ?? 0),
      '--transport',
      options.transports ?? 'udp,tcp',
    ],
    // The demo's and bench's relay speaks up only for problems unless BRAID_LOG says otherwise.
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, BRAID_LOG: process.env.BRAID_LOG ?? 'warn' },
    },
  );
  const lines = createInterface({ input: child.stdout });
  const invite = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) =>
      reject(
        new BraidError('BRAID_ERR_INTERNAL', 'relay exited before printing an invite', {
          value: code,
        }),
      ),
    );
    lines.on('line', (line) => {
      const m = /^invite [^:]+: (braid:\/\/\S+)$/.exec(line);
      if (m !== null) resolve(m[1]!);
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return { invite, stop };
}

async function demoCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      bytes: { type: 'string', default: '100M' },
      via: { type: 'string', default: '127.0.0.2,127.0.0.3,127.0.0.4' },
      transport: { type: 'string', default: 'udp,udp,tcp' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const via = splitList(values.via);
  const transports = parseTransports(values.transport, via.length);
  const stateDir = mkdtempSync(join(tmpdir(), 'braid-demo-'));
  process.stdout.write(`starting a local relay (state in ${stateDir})\n`);
  const relay = await spawnRelay({ stateDir });
  try {
    process.stdout.write(`relay invite: ${relay.invite}\n`);
    process.stdout.write(
      `sending ${values.bytes} over ${via.length} paths: ${via.map((v, i) => `${v}/${transports[i] ?? transports[0]}`).join(', ')}\n`,
    );
    const result = await runTransfer({
      invite: relay.invite,
      via,
      transports,
      bytes: parseSize(values.bytes),
      logger: createLogger(),
    });
    process.stdout.write(formatTransfer(result) + '\n');
    if (!result.verified) process.exitCode = 1;
  } finally {
    await relay.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'relay':
      return relayCommand(rest);
    case 'send':
      return sendCommand(rest);
    case 'demo':
      return demoCommand(rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP);
      return;
    default:
      fail(`unknown command "${command}"; see braid --help`);
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    if (isBraidError(err)) process.stderr.write(`braid: ${err.message} [${err.code}]\n`);
    else
      process.stderr.write(
        `braid: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    process.exitCode = err instanceof BraidError && err.code === 'BRAID_ERR_USAGE' ? 2 : 1;
  });
}
