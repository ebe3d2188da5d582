import type { CpuShare } from './schedstat.js';
import type { SystemReport, TransferOutcome } from './suite.js';

/** Small statistics for the lab's reports: repeated runs are judged on their median. */

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The item whose value is the median (the lower of the middle two for an even count):
 * a whole run, so that its series, link figures and CPU go with the figure reported.
 */
export function medianItem<T>(items: readonly T[], value: (item: T) => number): T | undefined {
  if (items.length === 0) return undefined;
  const sorted = [...items].sort((a, b) => value(a) - value(b));
  return sorted[(sorted.length - 1) >> 1];
}

const seconds = (ms: number): string => (ms / 1000).toFixed(2);

/** Bit/s as Mbit/s with two decimals. */
export const mbps = (bps: number): string => (bps / 1e6).toFixed(2);

/** Bulk goodput, Mbit/s: the median window's, with every window's beside it when several. */
export function goodputCell(medianBps: number, runsBps: readonly number[] | undefined): string {
  if (runsBps === undefined || runsBps.length < 2) return mbps(medianBps);
  return `${mbps(medianBps)} (${runsBps.map(mbps).join(', ')})`;
}

/**
 * Completion time of the runs of one size: the median, with every run beside it when
 * there are several; "> t" when one ran into the time limit (the median would hide it).
 */
export function transferCell(runs: readonly TransferOutcome[]): string {
  const limit = runs.find((t) => t.timedOutMs !== undefined)?.timedOutMs;
  if (limit !== undefined) return `> ${seconds(limit)}`;
  const done = runs.flatMap((t) => (t.completionMs === undefined ? [] : [t.completionMs]));
  if (done.length === 0 || done.length < runs.length) return 'failed';
  if (done.length === 1) return seconds(done[0]!);
  return `${seconds(median(done)!)} (${done.map((t) => seconds(t)).join(', ')})`;
}

/**
 * The endpoints' main threads over each bulk run (test/lab/schedstat.ts): ms per second
 * on a CPU and ms per second runnable but waiting for one. The emulator and both ends
 * share the machine's cores; a wait of hundreds of ms per s stalls a user-space engine's
 * sending and acknowledging, which the kernel's TCP does in softirq.
 */
export function cpuLine(systems: readonly SystemReport[]): string | undefined {
  const share = (c: CpuShare | undefined): string =>
    c === undefined ? '-' : `${c.runMsPerS.toFixed(0)} / ${c.waitMsPerS.toFixed(0)}`;
  const parts = systems
    .filter((s) => s.bulk?.cpu !== undefined || s.serverCpu !== undefined)
    .map((s) => `${s.label}: client ${share(s.bulk?.cpu)}, server ${share(s.serverCpu)}`);
  if (parts.length === 0) return undefined;
  return (
    'Main threads during the bulk runs, ms per s running / waiting for a CPU: ' +
    parts.join('; ') +
    '.'
  );
}
