import { readSync, writeSync } from 'node:fs';
import { systemClock } from '../../core/util/clock.js';
import { BraidError, isBraidError } from '../../core/util/errors.js';
import type { ControlCommand, ControlReply, ForwarderConfig, LinkStats } from './link-control.js';
import { LinkDirection, seededRandom } from './link-model.js';
import {
  POLL_ERR,
  POLL_HUP,
  POLL_IN,
  Poller,
  openTun,
  readPacket,
  setTimerSlack,
  writePacket,
} from './tun.js';

/**
 * One emulated link as a process: `tsx forwarder.ts '<ForwarderConfig JSON>'`.
 * Creates a TUN device for each end (the lab moves them into the client and server
 * namespaces), then loops without an event loop: block in ppoll() on both TUN
 * devices and stdin until a packet arrives or the next release time, read every
 * queued packet into its direction's model, write every packet whose time has come.
 * Control commands arrive as JSON lines on stdin; end of stdin (the lab died) or
 * SIGTERM ends the process, which deletes both TUN devices with it.
 */

/** Largest IP packet a TUN read can return (the lab keeps MTU 1500, this is slack). */
const MAX_PACKET = 65_536;
/** Reads per device per wake-up, so one busy direction cannot starve the other. */
const READ_BURST = 256;
/** Wake-ups later than this are stalls (GC, a busy core), not timer lateness; ignore them. */
const MAX_BIAS_SAMPLE_MS = 2;

const STDIN = 0;
const STDOUT = 1;

function main(): void {
  const raw = process.argv[2];
  if (raw === undefined) {
    throw new BraidError('BRAID_ERR_USAGE', 'usage: forwarder.ts <ForwarderConfig JSON>');
  }
  const config = JSON.parse(raw) as ForwarderConfig;
  const clock = systemClock;
  const c2s = new LinkDirection<Buffer>(config.c2s, clock, seededRandom(config.seed));
  const s2c = new LinkDirection<Buffer>(config.s2c, clock, seededRandom(config.seed ^ 0x5bd1e995));
  const clientFd = openTun(config.clientTun);
  const serverFd = openTun(config.serverTun);
  const poller = new Poller([clientFd, serverFd, STDIN]);
  setTimerSlack(1000);
  const scratch = Buffer.allocUnsafe(MAX_PACKET);
  const stdinBuf = Buffer.allocUnsafe(65_536);
  let pendingInput = '';
  let writeErrors = 0;
  let wakeups = 0;

  const drain = (fd: number, dir: LinkDirection<Buffer>): void => {
    for (let i = 0; i < READ_BURST; i++) {
      const n = readPacket(fd, scratch);
      if (n === 0) return;
      // The packet outlives the scratch buffer while it waits in the model.
      const packet = Buffer.allocUnsafe(n);
      scratch.copy(packet, 0, 0, n);
      dir.offer(packet, n);
    }
  };
  const release = (dir: LinkDirection<Buffer>, fd: number, cutoff: number, now: number): void => {
    for (;;) {
      const packet = dir.takeDue(cutoff, now);
      if (packet === undefined) return;
      if (!writePacket(fd, packet)) writeErrors++;
    }
  };
  const stats = (): LinkStats => ({
    atMs: clock.now(),
    c2s: { ...c2s.stats },
    s2c: { ...s2c.stats },
    writeErrors,
    wakeups,
  });
  const dirs = (dir: 'c2s' | 's2c' | 'both'): Array<LinkDirection<Buffer>> =>
    dir === 'both' ? [c2s, s2c] : dir === 'c2s' ? [c2s] : [s2c];
  const reply = (message: ControlReply): void => {
    writeSync(STDOUT, JSON.stringify(message) + '\n');
  };
  /** Returns false when the lab asked us to exit. */
  const handle = (cmd: ControlCommand): boolean => {
    switch (cmd.cmd) {
      case 'set':
        for (const d of dirs(cmd.dir)) d.set(cmd.params);
        reply({ id: cmd.id, ok: true });
        return true;
      case 'trace':
        for (const d of dirs(cmd.dir)) d.setTrace(cmd.trace);
        reply({ id: cmd.id, ok: true });
        return true;
      case 'stats':
        reply({ id: cmd.id, ok: true, stats: stats() });
        if (cmd.reset === true) {
          c2s.resetStats();
          s2c.resetStats();
          writeErrors = 0;
          wakeups = 0;
        }
        return true;
      case 'exit':
        reply({ id: cmd.id, ok: true });
        return false;
    }
  };
  const onLine = (line: string): boolean => {
    if (line.trim() === '') return true;
    let cmd: ControlCommand;
    try {
      cmd = JSON.parse(line) as ControlCommand;
    } catch (err) {
      reply({ id: -1, ok: false, code: 'BRAID_ERR_USAGE', error: `bad JSON: ${String(err)}` });
      return true;
    }
    try {
      return handle(cmd);
    } catch (err) {
      reply({
        id: cmd.id,
        ok: false,
        code: isBraidError(err) ? err.code : 'BRAID_ERR_INTERNAL',
        error: String(err),
      });
      return true;
    }
  };
  /** Reads what stdin has; returns false at end of input or on exit. */
  const control = (): boolean => {
    const n = readSync(STDIN, stdinBuf, 0, stdinBuf.length, null);
    if (n === 0) return false;
    pendingInput += stdinBuf.toString('utf8', 0, n);
    let nl: number;
    while ((nl = pendingInput.indexOf('\n')) >= 0) {
      const line = pendingInput.slice(0, nl);
      pendingInput = pendingInput.slice(nl + 1);
      if (!onLine(line)) return false;
    }
    return true;
  };

  writeSync(STDOUT, JSON.stringify({ event: 'ready', pid: process.pid }) + '\n');
  // How late ppoll() timeouts fire on average (VM wake-up from idle costs ~0.2 ms
  // here): we ask to wake that much early and release what is due by then, so the
  // mean release time lands on the due time instead of after it.
  let wakeBias = 0;
  let wakeAt = Infinity;
  for (;;) {
    const now0 = clock.now();
    const ready = poller.wait(wakeAt === Infinity ? Infinity : wakeAt - now0);
    wakeups++;
    if (ready === 0 && wakeAt !== Infinity) {
      const late = clock.now() - wakeAt;
      if (late >= 0 && late < MAX_BIAS_SAMPLE_MS) wakeBias += (late - wakeBias) / 16;
    }
    if ((poller.revents(2) & (POLL_IN | POLL_HUP | POLL_ERR)) !== 0 && !control()) break;
    drain(clientFd, c2s);
    drain(serverFd, s2c);
    const now = clock.now();
    release(c2s, serverFd, now + wakeBias, now);
    release(s2c, clientFd, now + wakeBias, now);
    const next = Math.min(c2s.nextDue(), s2c.nextDue());
    wakeAt = next - wakeBias;
  }
  // Exiting closes both TUN descriptors, which deletes the devices.
  process.exit(0);
}

main();
