import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnRelay } from '../core/cli/main.js';
import { parseSize, runTransfer } from '../core/cli/transfer.js';
import type { TransportKind } from '../core/wire/frame.js';
import { createLogger } from '../core/util/log.js';

/**
 * `npm run bench -- loopback`: goodput of Braid with 1, 2 and 3 paths of each
 * transport, and of one plain TCP connection, measured in the same run against
 * peers in their own processes. Ratios, not absolute numbers, are what compare
 * across these noisy shared machines.
 */
async function plainTcp(bytes: number): Promise<number> {
  const sinkPath = fileURLToPath(new URL('./tcp-sink.ts', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, sinkPath], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve) =>
    lines.on('line', (l) => {
      const m = /^listening (\d+)$/.exec(l);
      if (m !== null) resolve(Number(m[1]));
    }),
  );
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => socket.once('connect', resolve));
  const block = randomBytes(256 * 1024);
  const started = performance.now();
  let sent = 0;
  const reply = new Promise<number>((resolve) => {
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('end', () => resolve((JSON.parse(text) as { bytes: number }).bytes));
  });
  while (sent < bytes) {
    const n = Math.min(block.length, bytes - sent);
    sent += n;
    if (!socket.write(n === block.length ? block : block.subarray(0, n)))
      await new Promise((r) => socket.once('drain', r));
  }
  socket.end();
  const received = await reply;
  const seconds = (performance.now() - started) / 1000;
  child.stdin.end();
  return (received * 8) / seconds / 1e6;
}

async function loopback(bytes: number, repeats: number): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'braid-bench-'));
  const relay = await spawnRelay({ stateDir });
  const rows: Array<{ name: string; mbps: number; detail: string }> = [];
  const best = async (
    name: string,
    fn: () => Promise<{ mbps: number; detail: string }>,
  ): Promise<void> => {
    let top = { mbps: 0, detail: '' };
    for (let i = 0; i < repeats; i++) {
      const r = await fn();
      if (r.mbps > top.mbps) top = r;
    }
    rows.push({ name, ...top });
    process.stderr.write(`${name}: ${top.mbps.toFixed(0)} Mbit/s ${top.detail}\n`);
  };
  try {
    await best('plain TCP, 1 connection', async () => ({
      mbps: await plainTcp(bytes),
      detail: '',
    }));
    const addrs = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    for (const kind of ['udp', 'tcp'] as TransportKind[]) {
      for (let n = 1; n <= 3; n++) {
        await best(`braid ${n} ${kind} path${n > 1 ? 's' : ''}`, async () => {
          const r = await runTransfer({
            invite: relay.invite,
            via: addrs.slice(0, n),
            transports: [kind],
            bytes,
            logger: createLogger({ level: 'error' }),
          });
          if (!r.verified) throw new Error(`SHA-256 mismatch in ${kind} x${n}`);
          return {
            mbps: r.mbps,
            detail: r.paths.map((p) => `${p.local} ${(p.share * 100).toFixed(0)}%`).join(', '),
          };
        });
      }
    }
    await best('braid 2 udp + 1 tcp', async () => {
      const r = await runTransfer({
        invite: relay.invite,
        via: addrs,
        transports: ['udp', 'udp', 'tcp'],
        bytes,
        logger: createLogger({ level: 'error' }),
      });
      return {
        mbps: r.mbps,
        detail: r.paths.map((p) => `${p.kind} ${(p.share * 100).toFixed(0)}%`).join(', '),
      };
    });
  } finally {
    await relay.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  const tcp = rows[0]!.mbps;
  process.stdout.write(
    `\nloopback goodput, ${(bytes / 1e6).toFixed(0)} MB per run, best of ${repeats}, AES-256-GCM on every Braid path\n`,
  );
  process.stdout.write('configuration              Mbit/s   ratio to plain TCP   split\n');
  for (const r of rows) {
    process.stdout.write(
      `${r.name.padEnd(26)} ${r.mbps.toFixed(0).padStart(6)}   ${(r.mbps / tcp).toFixed(3).padStart(18)}   ${r.detail}\n`,
    );
  }
}

/** `npm run bench` with no argument, `-- lab ...` or only options: the network lab (bench/lab.ts). */
async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === undefined || first === 'lab' || first.startsWith('--')) {
    const { runLabBench } = await import('./lab.js');
    return runLabBench(first === 'lab' ? argv.slice(1) : argv);
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      bytes: { type: 'string', default: '200M' },
      repeats: { type: 'string', default: '2' },
    },
  });
  if (positionals[0] !== 'loopback') {
    process.stderr.write(`unknown benchmark "${positionals[0]}" (known: lab, loopback)\n`);
    return 2;
  }
  await loopback(parseSize(values.bytes), Number(values.repeats));
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
