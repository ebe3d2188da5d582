import { readFileSync } from 'node:fs';
import { BraidError } from '../../core/util/errors.js';

/**
 * How a process's main thread (its event loop) fared for CPU: /proc/<pid>/schedstat
 * gives the nanoseconds it ran and the nanoseconds it was runnable but waited for a
 * CPU. The lab's endpoints share two cores with each other and with the link
 * emulator, so a user-space engine can stall for want of a CPU where the kernel's
 * TCP, acknowledged in softirq, does not: the report shows both figures per system.
 */
export interface SchedSample {
  /** performance.now() when read. */
  at: number;
  runNs: number;
  waitNs: number;
}

/** CPU of a main thread over a stretch of time, per second of it. */
export interface CpuShare {
  runMsPerS: number;
  waitMsPerS: number;
}

/**
 * Reads the main thread's counters of `pid` (or this process); undefined when there is
 * nothing to read: the process has exited, or the kernel has no schedstat (not Linux).
 */
export function sampleSched(pid: number | 'self'): SchedSample | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/schedstat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw new BraidError('BRAID_ERR_INTERNAL', `cannot read /proc/${pid}/schedstat`, {
      cause: err,
    });
  }
  const [run, wait] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(run) || !Number.isFinite(wait))
    throw new BraidError('BRAID_ERR_INTERNAL', `malformed /proc/${pid}/schedstat`, {
      value: text,
    });
  return { at: performance.now(), runNs: run!, waitNs: wait! };
}

/** Per second between two samples of one thread; undefined without both or time between. */
export function cpuBetween(
  a: SchedSample | undefined,
  b: SchedSample | undefined,
): CpuShare | undefined {
  if (a === undefined || b === undefined || b.at <= a.at) return undefined;
  const seconds = (b.at - a.at) / 1000;
  return {
    runMsPerS: (b.runNs - a.runNs) / 1e6 / seconds,
    waitMsPerS: (b.waitNs - a.waitNs) / 1e6 / seconds,
  };
}
