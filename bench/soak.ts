/**
 * `npm run soak [-- --minutes 10]`: mixed traffic over three loopback paths (udp, udp,
 * tcp) behind emulated bad links, while uplinks flap at random and the relay is
 * restarted once halfway (a new association then carries on). Checks that every
 * reliable byte and message arrived exactly once (SHA-256 per bulk transfer, message
 * numbers per reliable message session) and that no sockets or timers are left once
 * everything is closed (process.getActiveResourcesInfo()); prints a summary.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BraidClient } from '../core/api/client.js';
import { startRelay, type Relay } from '../core/relay/relay.js';
import { createLogger } from '../core/util/log.js';
import { impair, seededRandom, type ImpairmentCounters } from '../test/support/impaired-subflow.js';
import { echoTransfer } from '../test/security/support/on-path.js';

const quiet = createLogger({ level: 'silent' });
const UPLINKS: Array<[string, 'udp' | 'tcp']> = [
  ['127.0.0.2', 'udp'],
  ['127.0.0.3', 'udp'],
  ['127.0.0.4', 'tcp'],
];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const totals = {
  bulkTransfers: 0,
  bulkBytes: 0,
  bulkCorrupt: 0,
  bulkFailed: 0,
  reliableSent: 0,
  reliableReceived: 0,
  reliableDuplicates: 0,
  reliableMissing: 0,
  unreliableSent: 0,
  unreliableReceived: 0,
  flaps: 0,
  flapErrors: 0,
  associations: 0,
};
const counters: ImpairmentCounters = { dropped: 0, reordered: 0, duplicated: 0, tampered: 0 };
const random = seededRandom(Number(process.env['BRAID_SOAK_SEED'] ?? 1));

async function startOn(stateDir: string, port: number): Promise<Relay> {
  return startRelay({ stateDir, host: '127.0.0.1', port, logger: quiet });
}

async function connect(relay: Relay): Promise<BraidClient> {
  const c = await BraidClient.connect({
    invite: relay.invites[0]!.invite,
    via: UPLINKS.map((u) => u[0]),
    transports: UPLINKS.map((u) => u[1]),
    logger: quiet,
    wrapSubflow: (s) =>
      impair(s, { dropRate: 0.005, reorderRate: 0.01, reorderDelayMs: 3, random }, counters),
  });
  if (c.kind !== 'braid') throw new Error('expected a Braid association');
  totals.associations++;
  return c.client;
}

/** Runs until `until`: bulk echo transfers one after the other. */
async function bulk(client: BraidClient, until: () => boolean): Promise<void> {
  while (!until()) {
    try {
      const r = await echoTransfer(client, 2_000_000);
      totals.bulkTransfers++;
      totals.bulkBytes += r.bytes;
      if (r.receivedSha256 !== r.sentSha256 || r.receivedBytes !== r.bytes) totals.bulkCorrupt++;
    } catch {
      // The association ended under it (relay restart): counted, not corrupt.
      totals.bulkFailed++;
      return;
    }
  }
}

/** Numbered messages on a reliable-unordered session and on an unreliable one, echoed back. */
async function messages(client: BraidClient, until: () => boolean): Promise<void> {
  const reliable = client.openMessages({ semantics: 'reliable-unordered', target: 'echo' });
  const unreliable = client.openMessages({ semantics: 'unreliable-unordered', target: 'echo' });
  const seen = new Map<number, number>();
  let sent = 0;
  reliable.on('error', () => undefined);
  unreliable.on('error', () => undefined);
  reliable.on('message', (m: Buffer) => {
    const n = m.readUInt32BE(0);
    seen.set(n, (seen.get(n) ?? 0) + 1);
  });
  unreliable.on('message', () => totals.unreliableReceived++);
  const ended = new Promise<void>((r) => reliable.once('close', () => r()));
  while (!until() && !client.association.closedError && client.association.state !== 'closed') {
    for (let i = 0; i < 20; i++) {
      const m = Buffer.alloc(200);
      m.writeUInt32BE(sent++, 0);
      reliable.send(m);
      unreliable.send(m);
      totals.unreliableSent++;
    }
    await sleep(20);
  }
  const closedUnder = client.association.state === 'closed';
  reliable.end();
  unreliable.end();
  if (!closedUnder) await Promise.race([ended, sleep(10_000)]);
  totals.reliableSent += sent;
  for (let n = 0; n < sent; n++) {
    const c = seen.get(n) ?? 0;
    if (c > 1) totals.reliableDuplicates++;
    if (c === 0 && !closedUnder) totals.reliableMissing++;
    totals.reliableReceived += Math.min(c, 1);
  }
}

async function flaps(client: BraidClient, until: () => boolean): Promise<void> {
  while (!until()) {
    await sleep(2000 + random() * 3000);
    if (until() || client.association.state === 'closed') return;
    const [addr, transport] = UPLINKS[Math.floor(random() * UPLINKS.length)]!;
    try {
      client.removeUplink(addr, 'soak: flap');
      await sleep(300 + random() * 1500);
      await client.addUplink(addr, transport);
      totals.flaps++;
    } catch {
      totals.flapErrors++;
    }
  }
}

async function phase(relay: Relay, endAt: number): Promise<void> {
  const client = await connect(relay);
  const until = (): boolean => Date.now() >= endAt;
  await Promise.all([bulk(client, until), messages(client, until), flaps(client, until)]);
  client.close();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { minutes: { type: 'string', default: '10' } },
  });
  const minutes = Number(values.minutes);
  const resourcesAtStart = process.getActiveResourcesInfo().length;
  const stateDir = mkdtempSync(join(tmpdir(), 'braid-soak-'));
  const started = Date.now();
  const half = started + (minutes * 60_000) / 2;
  const end = started + minutes * 60_000;
  let relay = await startOn(stateDir, 0);
  const port = relay.listener.port;
  await phase(relay, half);
  // The relay restarts on the same port and keys; the client makes a new association.
  await relay.close();
  relay = await startOn(stateDir, port);
  await phase(relay, end);
  await relay.close();
  rmSync(stateDir, { recursive: true, force: true });
  // Short-lived timers (an ERROR's linger, a JOIN deadline) may still run: wait them out.
  for (let i = 0; i < 100 && process.getActiveResourcesInfo().length > resourcesAtStart; i++)
    await sleep(100);
  const left = process.getActiveResourcesInfo();
  const leaked = left.length - resourcesAtStart;
  console.log(
    JSON.stringify(
      {
        minutes,
        seconds: Math.round((Date.now() - started) / 1000),
        ...totals,
        impairment: counters,
        activeResourcesAtStart: resourcesAtStart,
        activeResourcesAtEnd: left.length,
        leftOver: leaked > 0 ? left : [],
      },
      null,
      2,
    ),
  );
  const ok =
    totals.bulkCorrupt === 0 &&
    totals.reliableDuplicates === 0 &&
    totals.reliableMissing === 0 &&
    leaked <= 0;
  console.log(ok ? 'soak: OK' : 'soak: FAILED');
  process.exitCode = ok ? 0 : 1;
}

await main();
