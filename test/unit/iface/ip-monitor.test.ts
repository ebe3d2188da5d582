import { describe, expect, it } from 'vitest';
import { IpMonitor } from '../../../core/iface/ip-monitor.js';
import { systemClock } from '../../../core/util/clock.js';
import { createMemoryLogger } from '../../../core/util/log.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** A stand-in for `ip monitor`: the supervisor is under test, not iproute2. */
describe('IpMonitor supervision', () => {
  it('restarts a monitor that dies, logs exit code and stderr, and asks for a re-read', async () => {
    const { logger, lines } = createMemoryLogger('debug');
    let events = 0;
    let restarts = 0;
    let done!: () => void;
    const twice = new Promise<void>((resolve) => (done = resolve));
    const m = new IpMonitor({
      ip: '/bin/sh',
      args: ['-c', 'echo link; echo "Netlink overrun" >&2; exit 3'],
      logger,
      clock: systemClock,
      restartMinMs: 10,
      onEvent: () => events++,
      onRestart: () => {
        if (++restarts === 2) done();
      },
    });
    await m.start();
    await twice;
    await m.stop();
    expect(m.restarts).toBeGreaterThanOrEqual(2);
    expect(events).toBeGreaterThanOrEqual(2);
    const exit = lines.find((l) => l.msg === 'ip monitor exited; restarting');
    expect(exit).toMatchObject({ level: 'warn', code: 3, stderr: 'Netlink overrun' });
    // Back-off doubles between consecutive deaths.
    const delays = lines
      .filter((l) => l.msg === 'ip monitor exited; restarting')
      .map((l) => l.restartInMs);
    expect(delays.slice(0, 2)).toEqual([10, 20]);
  });

  it('fails start() with a coded error when the program cannot run', async () => {
    const { logger } = createMemoryLogger();
    const m = new IpMonitor({
      ip: '/nonexistent/ip',
      logger,
      clock: systemClock,
      onEvent: () => undefined,
      onRestart: () => undefined,
    });
    await expect(m.start()).rejects.toMatchObject({ code: 'BRAID_ERR_INTERNAL' });
  });

  it('stop() ends the child and no restart follows', async () => {
    const { logger, lines } = createMemoryLogger();
    const m = new IpMonitor({
      ip: '/bin/sleep',
      args: ['30'],
      logger,
      clock: systemClock,
      restartMinMs: 10,
      onEvent: () => undefined,
      onRestart: () => undefined,
    });
    await m.start();
    const pid = m.pid!;
    expect(alive(pid)).toBe(true);
    await m.stop();
    expect(alive(pid)).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(m.pid).toBeUndefined();
    expect(lines.filter((l) => l.msg === 'ip monitor exited; restarting')).toEqual([]);
  });
});
