import { cpuLine, goodputCell, mbps, transferCell } from '../test/lab/stats.js';
import { describeUplink } from '../test/lab/scenario.js';
import type { SuiteReport, SystemReport } from '../test/lab/suite.js';

/**
 * One Markdown table per scenario (issue 5). Goodput ratios are against the sum of
 * the single-path TCP goodputs and against the best of them, all measured in the
 * same run on the same links.
 */

/** Release lateness beyond this means the emulator, not the link, shaped the traffic. */
const STALL_WARN_MS = 20;

const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : '-');
const ms = (v: number | undefined): string =>
  v === undefined || Number.isNaN(v) ? '-' : v < 100 ? v.toFixed(1) : v.toFixed(0);

function megabytes(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(bytes % 1e6 === 0 ? 0 : 1)} MB` : `${bytes} B`;
}

/** "0 / 0" when every checked byte arrived exactly once, else the counts. */
function integrityCell(s: SystemReport): string {
  const i = s.integrity;
  let cell = `${i.lostBytes} / ${i.duplicatedBytes}`;
  if (i.corruptBytes > 0) cell += ` + ${i.corruptBytes} corrupt`;
  if (i.messagesLost + i.messagesDuplicated > 0)
    cell += `; msgs ${i.messagesLost} lost ${i.messagesDuplicated} dup`;
  return `${cell} (${(i.checkedBytes / 1e6).toFixed(1)} MB checked)`;
}

function stallCell(s: SystemReport): string {
  const b = s.bulk;
  if (b?.maxGapMs === undefined) return '-';
  return `${ms(b.maxGapMs)} (at ${((b.maxGapAtMs ?? 0) / 1000).toFixed(1)} s)`;
}

/** Scenario d: ms from the link's return until the sum is back (suite.ts failoverRecovery). */
function recoveryCell(s: SystemReport): string {
  const f = s.failover;
  if (f === undefined) return '-';
  return f.recoveryMs === undefined ? 'never' : ms(f.recoveryMs);
}

function noteCell(s: SystemReport): string {
  const notes: string[] = [];
  if (s.mptcp !== undefined)
    notes.push(s.mptcp.capable ? `MP_CAPABLE, ${s.mptcp.joins} joins` : 'fell back to TCP');
  const paths = (s.bulk as { paths?: Array<{ local: string; streamBytesReceived: number }> })
    ?.paths;
  if (paths !== undefined) {
    const total = paths.reduce((t, p) => t + p.streamBytesReceived, 0);
    if (total > 0)
      notes.push(
        'split ' +
          paths
            .map((p) => `${p.local} ${((p.streamBytesReceived / total) * 100).toFixed(0)}%`)
            .join(', '),
      );
  }
  if (s.bulkError !== undefined) notes.push(`bulk failed: ${s.bulkError.slice(0, 120)}`);
  for (const t of s.transfers)
    if (t.error !== undefined && t.timedOutMs === undefined)
      notes.push(`${megabytes(t.bytes)} failed: ${t.error.slice(0, 80)}`);
  if (s.messagesError !== undefined) notes.push(`messages failed: ${s.messagesError.slice(0, 80)}`);
  return notes.join('; ').replace(/\|/g, '/').replace(/\n/g, ' ');
}

export function formatSuite(report: SuiteReport): string {
  const s = report.scenario;
  const rounds = Math.max(0, ...report.systems.map((x) => x.bulkRunsBps?.length ?? 0));
  const nominal = s.uplinks.reduce((sum, u) => sum + (u.downRateMbps ?? u.rateMbps), 0);
  const sizes = [...new Set(report.systems[0]?.transfers.map((t) => t.bytes) ?? [])];
  const runsOf = (b: number): number =>
    report.systems[0]?.transfers.filter((t) => t.bytes === b).length ?? 0;
  const failover = report.systems.find((x) => x.failover !== undefined)?.failover;
  const lines = [
    `### ${s.name}: ${s.description}`,
    '',
    `${s.uplinks.map(describeUplink).join(' | ')}; downloads; bulk window ${report.bulkMs / 1000} s; ` +
      `TCP congestion control ${report.congestionControl}; nominal sum ${nominal} Mbit/s. ` +
      `Transfers: from the request on an open connection to the last byte. Messages: ` +
      `${report.messages} × 1 KB at 50/s, server to client on an idle reliable stream, ` +
      `one-way delay (both ends read the host's CLOCK_MONOTONIC). Lost / dup: application ` +
      `bytes checked against position-stamped payloads over every run. Longest stall: ` +
      `longest gap between data arrivals in the bulk run (its start, s after the first byte). ` +
      `"> t": the transfer was still running at the time limit and was stopped.` +
      (failover === undefined
        ? ''
        : ` Back to sum: ms from ${failover.uplink}'s return (${(failover.upAtMs / 1000).toFixed(1)} s) ` +
          `to the end of the first ${failover.windowMs} ms window whose mean rate (all links, ` +
          `100 ms bins of bytes delivered) reaches ${failover.share * 100}% of the mean over the ` +
          `2 s before it went down (${(failover.downAtMs / 1000).toFixed(1)} s); "never": not within the run.`),
    '',
    `| system | ${rounds > 1 ? `goodput Mbit/s (median of ${rounds} windows)` : 'goodput Mbit/s'} | / sum of singles | / best single | ${sizes
      .map((b) =>
        runsOf(b) > 1 ? `${megabytes(b)} s (median of ${runsOf(b)})` : `${megabytes(b)} s`,
      )
      .join(
        ' | ',
      )} | msg p50 ms | msg p99 ms | lost / dup bytes | longest stall ms |${failover === undefined ? '' : ' back to sum ms |'} note |`,
    `|---|---:|---:|---:|${sizes.map(() => '---:|').join('')}---:|---:|---|---:|${failover === undefined ? '' : '---:|'}---|`,
  ];
  const best = report.best;
  const row = (label: string, sys: SystemReport): string => {
    const g = sys.bulk?.goodputBps;
    const cells = [
      label,
      g === undefined ? 'failed' : goodputCell(g, sys.bulkRunsBps),
      g === undefined ? '-' : ratio(g, report.sumSinglesBps),
      g === undefined || best === undefined ? '-' : ratio(g, best.goodputBps),
      ...sizes.map((b) => transferCell(sys.transfers.filter((x) => x.bytes === b))),
      ms(sys.messages?.p50Ms),
      ms(sys.messages?.p99Ms),
      integrityCell(sys),
      stallCell(sys),
      ...(failover === undefined ? [] : [recoveryCell(sys)]),
      noteCell(sys),
    ];
    return `| ${cells.join(' | ')} |`;
  };
  const order = [
    ...report.systems.filter((x) => x.system === 'braid'),
    ...(best === undefined
      ? []
      : report.systems
          .filter((x) => x.system === `tcp:${best.uplink}`)
          .map((x) => ({
            ...x,
            label: `best single path TCP (${best.uplink})`,
          }))),
    ...report.systems.filter((x) => x.system.startsWith('tcp:')),
    ...report.systems.filter((x) => x.system === 'mptcp'),
  ];
  for (const sys of order) lines.push(row(sys.label, sys));
  lines.push(
    '',
    `Sum of single-path goodputs ${mbps(report.sumSinglesBps)} Mbit/s` +
      (best === undefined
        ? ''
        : `; best single path ${best.uplink} ${mbps(best.goodputBps)} Mbit/s.`),
  );
  // The emulator's health during the bulk runs: a forwarder that could not keep up
  // (a starved core) shows as late releases and would taint the numbers above.
  const links = report.systems.flatMap((r) => r.links);
  const worst = links.reduce((m, l) => Math.max(m, l.lateMaxMs), 0);
  const mean = links.reduce((m, l) => Math.max(m, l.lateMeanMs), 0);
  lines.push(
    `Emulator during the bulk runs: release lateness worst mean ${(mean * 1000).toFixed(0)} µs, max ${worst.toFixed(1)} ms` +
      (worst > STALL_WARN_MS
        ? ` — WARNING: a forwarder stalled over ${STALL_WARN_MS} ms, rerun on an idle machine`
        : '') +
      '.',
  );
  const cpu = cpuLine(report.systems);
  if (cpu !== undefined) lines.push(cpu);
  return lines.join('\n');
}

/** Whether every system delivered every checked byte exactly once. */
export function exactlyOnce(report: SuiteReport): boolean {
  return report.systems.every(
    (s) =>
      s.integrity.lostBytes === 0 &&
      s.integrity.duplicatedBytes === 0 &&
      s.integrity.corruptBytes === 0 &&
      s.integrity.messagesLost === 0 &&
      s.integrity.messagesDuplicated === 0,
  );
}
