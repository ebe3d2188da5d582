import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { clientInvite, startRelay } from '../relay/relay.js';
import { InterfaceWatcher } from '../iface/interface-watcher.js';
import { SocksServer } from '../proxy/socks-server.js';
import { RelayOutbound } from '../proxy/relay-outbound.js';
import {
  DirectOutbound,
  InterfaceUplinkChooser,
  StaticUplinkChooser,
  type UplinkChooser,
} from '../proxy/direct.js';
import { RuleBook } from '../proxy/rules.js';
import { addClientKey } from '../handshake/identity-store.js';
import { TRANSPORT_KINDS, type TransportKind } from '../wire/frame.js';
import { BraidError, isBraidError } from '../util/errors.js';
import { createLogger, type LogLevel } from '../util/log.js';
import { formatTransfer, parseSize, runTransfer } from './transfer.js';
import { runProxyDemo } from './demo-proxy.js';

const HELP = `braid — stripe one flow over every uplink (session-layer striping)

Usage:
  braid demo  [--bytes 100M] [--via 127.0.0.2,127.0.0.3,127.0.0.4] [--transport udp,udp,tcp]
              [--seconds 20] [--skip-proxy]
      Starts a relay on 127.0.0.1 in a child process (its own keys in a temporary
      folder), sends pseudo-random bytes to its sink over one path per --via
      address, checks the SHA-256 and prints per-path and total goodput. Then, for
      --seconds, two programs use the local SOCKS5 proxy over impaired loopback
      uplinks (delay, jitter, loss in user space): a bulk download and a call
      (UDP ASSOCIATE, 50 x 200 B messages/s, echoed). A live table shows per
      uplink RTT, jitter, loss and throughput, per app its semantics, bytes and
      messages ok/late/lost (redrawn on a terminal, one line a second otherwise).
      Needs no root and no server.

  braid relay [--host 127.0.0.1] [--port 7400] [--address A,B] [--state DIR]
              [--transport udp,tcp] [--public-host NAME] [--allow-private]
              [--allow CIDR,...] [--max-sessions 512] [--rate 0] [--grace 30]
      Runs the far end of associations. On first run it creates a key pair and a
      self-signed certificate in DIR (default ~/.braid-relay, files 0600) and a
      client key; it prints one invite per client key:
        braid://host:port#<certificate sha256>?key=<key id>.<key>
      --address lists the addresses advertised for data paths (the relay's n
      addresses); --public-host is the name written into invites (default --host).
      Sessions "tcp:host:port" and "udp" are forwarded to the Internet (names are
      resolved at the relay). Destinations on loopback, private, link-local and
      unique-local ranges and the relay's own addresses are refused, after name
      resolution, unless --allow-private (all of them) or --allow lists the CIDRs.
      Per client key: --max-sessions open sessions, --rate bytes per second in
      both directions together (e.g. 10M; 0 = unlimited). SIGTERM stops accepting
      sessions and lets open ones finish for --grace seconds. Test targets:
      "sink" counts and hashes, "echo" echoes, "source:<ms>" sends for <ms>.

  braid relay add-client NAME [--state DIR] [--host H] [--port P]
      Adds a client key (one per laptop of a household) and prints its invite.
      (--add-client NAME does the same.)

  braid proxy [--invite <invite> --via A,B,...] [--transport udp,...] [--port 1080]
              [--host 127.0.0.1] [--rules FILE] [--user U --password P] [--bypass-all]
              [--allow-uid UID,...] [--allow-any-local-user]
      A local SOCKS5 proxy (CONNECT and UDP ASSOCIATE) for unmodified apps. With
      --invite, each connection is one session striped over the --via addresses to
      that relay; without, direct mode: each connection leaves on the best uplink
      for its app (--via lists them best first; default: the interface watcher's
      uplinks) and moves off an uplink whose connect fails. Apps are told apart by
      the socket's owner process; per-app rules (objectives, sliders, bypass) are
      kept in --rules (default ~/.config/braid/rules.json). Only this user's (and
      root's) programs are served, told by the socket's owner uid; --allow-uid adds
      other local users, --allow-any-local-user serves all. Where the owner cannot
      be read (macOS, Windows, clients on other machines) --user/--password are
      required instead.

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
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7400' },
      address: { type: 'string' },
      state: { type: 'string', default: join(process.env.HOME ?? '.', '.braid-relay') },
      transport: { type: 'string', default: 'udp,tcp' },
      'add-client': { type: 'string' },
      'public-host': { type: 'string' },
      'allow-private': { type: 'boolean', default: false },
      allow: { type: 'string' },
      'max-sessions': { type: 'string', default: '512' },
      rate: { type: 'string', default: '0' },
      grace: { type: 'string', default: '30' },
      // Internal: demo and bench stop their relay child by closing its stdin. Not a
      // default: under systemd stdin is /dev/null, which would end at once.
      'stop-on-stdin-end': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    fail(`--port must be 0..65535, not "${values.port}"`);
  const [sub, subName, ...extra] = positionals;
  if (sub !== undefined && sub !== 'add-client') fail(`unknown relay subcommand "${sub}"`);
  if (extra.length > 0) fail('relay add-client takes one name');
  const newClient =
    sub === 'add-client' ? (subName ?? fail('add-client needs a NAME')) : values['add-client'];
  if (newClient !== undefined) {
    const key = addClientKey(values.state, newClient);
    const invite = clientInvite(values.state, key.name, values['public-host'] ?? values.host, port);
    process.stdout.write(
      `added client key ${key.name} (${key.keyId})\ninvite ${key.name}: ${invite}\n`,
    );
    return;
  }
  const maxSessions = Number(values['max-sessions']);
  if (!Number.isInteger(maxSessions) || maxSessions < 1)
    fail(`--max-sessions must be a positive integer, not "${values['max-sessions']}"`);
  const rate = parseSize(values.rate);
  const graceMs = Number(values.grace) * 1000;
  if (!Number.isFinite(graceMs) || graceMs < 0)
    fail(`--grace must be seconds, not "${values.grace}"`);
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
    publicHost: values['public-host'],
    forward: { allowPrivate: values['allow-private'], allow: splitList(values.allow) },
    limits: { maxSessions, bytesPerSecond: rate },
    logger: createLogger({ level: (process.env.BRAID_LOG as LogLevel | undefined) ?? 'info' }),
  });
  for (const { name, invite } of relay.invites) process.stdout.write(`invite ${name}: ${invite}\n`);
  process.stdout.write(`relay listening on ${values.host}:${relay.listener.port}\n`);
  // The parent (demo, bench) may be gone by the time we stop; a closed stdout is not an error then.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  await new Promise<void>((resolve) => {
    let phase: 'running' | 'draining' | 'closing' = 'running';
    const stop = (): void => {
      if (phase === 'closing') return;
      phase = 'closing';
      process.stdout.write('relay stopping\n');
      void relay.close().then(resolve);
    };
    // SIGTERM (systemd, docker stop): no new sessions, open ones get --grace to finish.
    // A second signal stops at once.
    const graceful = (): void => {
      if (phase !== 'running') return stop();
      phase = 'draining';
      process.stdout.write(`relay draining (open sessions get up to ${graceMs / 1000} s)\n`);
      void relay.shutdown(graceMs).then(() => {
        process.stdout.write('relay stopped\n');
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', graceful);
    // A parent that spawned us (demo, bench) closes stdin to stop us.
    if (values['stop-on-stdin-end']) process.stdin.on('end', stop).resume();
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

async function proxyCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      invite: { type: 'string' },
      via: { type: 'string' },
      transport: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '1080' },
      rules: {
        type: 'string',
        default: join(process.env.HOME ?? '.', '.config', 'braid', 'rules.json'),
      },
      user: { type: 'string' },
      password: { type: 'string' },
      'bypass-all': { type: 'boolean', default: false },
      'allow-uid': { type: 'string' },
      'allow-any-local-user': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const allowUids = splitList(values['allow-uid']).map((u) => {
    const uid = Number(u);
    if (!Number.isInteger(uid) || uid < 0) fail(`--allow-uid takes uids (numbers), not "${u}"`);
    return uid;
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    fail(`--port must be 0..65535, not "${values.port}"`);
  if ((values.user === undefined) !== (values.password === undefined))
    fail('--user and --password go together');
  const logger = createLogger({ level: (process.env.BRAID_LOG as LogLevel | undefined) ?? 'info' });
  const via = splitList(values.via);
  let watcher: InterfaceWatcher | undefined;
  let outbound;
  if (values.invite !== undefined) {
    if (via.length === 0) fail('proxy --invite needs --via with at least one local address');
    outbound = await RelayOutbound.open({
      invite: values.invite,
      via,
      transports: parseTransports(values.transport, via.length),
      logger,
    });
  } else {
    let chooser: UplinkChooser;
    if (via.length > 0) {
      chooser = new StaticUplinkChooser(via.map((address) => ({ address, name: address })));
    } else {
      const w = new InterfaceWatcher({ logger });
      await w.start();
      watcher = w;
      chooser = new InterfaceUplinkChooser(() => w.snapshot());
    }
    outbound = new DirectOutbound({ chooser, logger });
  }
  const server = await SocksServer.listen({
    host: values.host,
    port,
    outbound,
    rules: RuleBook.load(values.rules, logger),
    auth:
      values.user !== undefined ? { username: values.user, password: values.password! } : undefined,
    globalBypass: values['bypass-all'],
    allowUids: values['allow-any-local-user'] ? 'any' : allowUids,
    logger,
  });
  process.stdout.write(
    `SOCKS5 proxy on ${values.host}:${server.port} (${values.invite !== undefined ? 'through the relay' : 'direct mode'})\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      void server
        .close()
        .then(() => watcher?.stop())
        .then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/** Starts `braid relay` as a child process and resolves with its first invite. */
export async function spawnRelay(options: {
  stateDir: string;
  host?: string;
  port?: number;
  transports?: string;
  /** CIDRs the relay may forward to although private (the demo's local web server). */
  allow?: string;
}): Promise<{ invite: string; stop: () => Promise<void> }> {
  const main = fileURLToPath(import.meta.url);
  // The child runs this TypeScript file too: under tsx's CLI (npm run) execArgv carries
  // its loader; under bin/braid.mjs, which registers tsx in its own process, it does not.
  const loader = process.execArgv.some((a) => a.includes('tsx')) ? [] : ['--import', 'tsx'];
  const child = spawn(
    process.execPath,
    [
      ...loader,
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
      '--stop-on-stdin-end',
      ...(options.allow !== undefined ? ['--allow', options.allow] : []),
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
      seconds: { type: 'string', default: '20' },
      'skip-proxy': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const via = splitList(values.via);
  const transports = parseTransports(values.transport, via.length);
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0)
    fail(`--seconds must be a positive number, not "${values.seconds}"`);
  const stateDir = mkdtempSync(join(tmpdir(), 'braid-demo-'));
  process.stdout.write(`starting a local relay (state in ${stateDir})\n`);
  // Loopback allowed: the proxy part fetches from a web server on this machine.
  const relay = await spawnRelay({ stateDir, allow: '127.0.0.0/8' });
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
    // The proxy part runs the apps through sh; Windows has none (and no /proc to tell apps apart).
    if (!values['skip-proxy'] && process.platform !== 'win32') {
      const { ok } = await runProxyDemo({
        invite: relay.invite,
        via,
        transports,
        durationMs: seconds * 1000,
        tty: process.stdout.isTTY === true,
        // Warnings on the terminal would break the table redrawn in place; BRAID_LOG still rules.
        logger: createLogger({
          level:
            (process.env.BRAID_LOG as LogLevel | undefined) ??
            (process.stdout.isTTY === true ? 'error' : 'warn'),
        }),
        write: (text) => process.stdout.write(text),
      });
      if (!ok) process.exitCode = 1;
    }
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
    case 'proxy':
      return proxyCommand(rest);
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

/**
 * Runs a command line and sets the exit code (2 for bad usage, 1 for any other failure)
 * with the error on stderr: for `node core/cli/main.ts` and for bin/braid.mjs, the
 * `braid` that package.json installs.
 */
export async function runCli(argv: string[]): Promise<void> {
  try {
    await main(argv);
  } catch (err: unknown) {
    if (isBraidError(err)) process.stderr.write(`braid: ${err.message} [${err.code}]\n`);
    else
      process.stderr.write(
        `braid: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    process.exitCode = err instanceof BraidError && err.code === 'BRAID_ERR_USAGE' ? 2 : 1;
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await runCli(process.argv.slice(2));
}
