import {
  poissonUpper95,
  TARGETS,
  type MessageRun,
  type ObjectivesReport,
  type PeakRow,
} from '../test/lab/objectives.js';
import { describeUplink } from '../test/lab/scenario.js';

/**
 * The lab's objectives section (issue 4) as Markdown: one table per objective a
 * scenario measures, and the buffer peaks of every Braid run. Targets are the issue's;
 * "met" / "MISSED" compare with single paths and MPTCP measured in the same run.
 */

const ms = (v: number | undefined): string =>
  v === undefined || Number.isNaN(v) ? '-' : v < 100 ? v.toFixed(1) : v.toFixed(0);
const pct = (v: number | undefined, digits = 3): string =>
  v === undefined || Number.isNaN(v) ? '-' : `${(v * 100).toFixed(digits)}%`;
const verdict = (ok: boolean | undefined): string =>
  ok === undefined ? 'not measured' : ok ? 'met' : 'MISSED';
const cell = (s: string): string => s.replace(/\|/g, '/').replace(/\n/g, ' ');
const kib = (b: number): string => (Number.isNaN(b) ? '-' : `${(b / 1024).toFixed(1)} KiB`);

/** Emulator release lateness above this means a starved forwarder shaped the delays (lab-report.ts). */
const STALL_WARN_MS = 20;

/** A warning when the runs behind a verdict saw the emulator stall. */
function stallWarning(runs: Array<MessageRun | undefined>): string {
  const worst = runs.reduce((m, r) => Math.max(m, r?.emulatorLateMaxMs ?? 0), 0);
  return worst > STALL_WARN_MS
    ? ` — WARNING: the emulator stalled up to ${ms(worst)} ms in these runs (busy machine); ` +
        `the delay tails are the emulator's, rerun on an idle machine before trusting the verdict`
    : '';
}

function pathsNote(r: MessageRun): string {
  if (r.error !== undefined) return `failed: ${cell(r.error.slice(0, 100))}`;
  if (r.split === undefined) return '';
  const notes = [`arrived on ${r.split.map((p) => `${p.uplink} ${p.messages}`).join(', ')}`];
  const sent = r.server?.stats;
  if (sent !== undefined && sent.copiesSent !== sent.queued)
    notes.push(`${sent.copiesSent} copies of ${sent.queued} sent`);
  return notes.join('; ');
}

function runRows(runs: MessageRun[]): string[] {
  return runs.map(
    (r) =>
      `| ${r.label} | ${r.received} / ${r.count} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.maxMs)} | ` +
      `${ms(r.jitterMs)} | ${ms(r.emulatorLateMaxMs)} | ${pathsNote(r)} |`,
  );
}

const RUN_HEADER = [
  '| system | received | p50 ms | p99 ms | max ms | jitter ms (RFC 3550) | emulator late max ms | note |',
  '|---|---:|---:|---:|---:|---:|---:|---|',
];

export function formatObjectives(report: ObjectivesReport): string {
  const s = report.scenario;
  const lines: string[] = [
    `### ${s.name}: objectives`,
    '',
    `${s.uplinks.map(describeUplink).join(' | ')}. Server to client, one-way delay from send() ` +
      `to delivery (both ends read CLOCK_MONOTONIC). Emulator late max: the worst lateness ` +
      `of the link emulator's packet releases during the run; tens of ms mean a starved ` +
      `forwarder (busy machine) shaped the delay tail, not the link or the scheduler. ` +
      `Single paths: TCP on that uplink alone ` +
      `(1 KB records on a stream) and a Braid session of the same semantics on an association ` +
      `with only that path ("pinned").`,
    '',
  ];
  const l = report.latency;
  if (l !== undefined) {
    lines.push(
      `**Latency first** (1 KB at 50/s, reliable-unordered, priorities latency > throughput). ` +
        `Target: p99 ≤ lowest single-path p99 + ${TARGETS.latencyMarginMs} ms ` +
        `(${l.bestSingle === undefined ? '-' : `${l.bestSingle.system} ${ms(l.bestSingle.p99Ms)} ms`}): ` +
        `**${verdict(l.withinMargin)}**; below MPTCP's p99 (${ms(l.mptcp?.p99Ms)} ms): ` +
        `**${verdict(l.belowMptcp)}**${stallWarning([l.braid, ...l.singles, l.mptcp])}.`,
      '',
      ...RUN_HEADER,
      ...runRows([l.braid, ...l.singles, ...(l.mptcp === undefined ? [] : [l.mptcp])]),
      '',
    );
  }
  const j = report.jitter;
  if (j !== undefined) {
    lines.push(
      `**Jitter first** (same traffic, priorities jitter > throughput). Target: jitter ≤ ` +
        `steadiest single path's + ${TARGETS.jitterMarginMs} ms ` +
        `(${j.steadiest === undefined ? '-' : `${j.steadiest.system} ${ms(j.steadiest.jitterMs)} ms`}): ` +
        `**${verdict(j.withinMargin)}**${stallWarning([j.braid, ...j.singles, j.mptcp])}.`,
      '',
      ...RUN_HEADER,
      ...runRows([j.braid, ...j.singles, ...(j.mptcp === undefined ? [] : [j.mptcp])]),
      '',
    );
  }
  const d = report.deadline;
  if (d !== undefined) {
    lines.push(
      `**Unreliable-ordered, ${d.deadlineMs} ms playout deadline** (1 KB at 50/s, latency first). ` +
        `Must be 0: delivered out of order, delivered more than ${d.deadlineMs} ms + ` +
        `${d.toleranceMs.toFixed(1)} ms after send(): **${verdict(d.met)}**${stallWarning([d.braid])}. ` +
        `The deadline counts from send(): each message carries its send time ` +
        `(DATAGRAM_STAMPED) and the receiver maps the sender's clock with half the path's ` +
        `min RTT (core/session/message-receiver.ts); the tolerance is that estimate's ` +
        `error on these links (a packet's serialization on the slowest link plus timer ` +
        `slack). "after deadline" counts without it (of the ten longest delays kept), ` +
        `"beyond tolerance" with it.`,
      '',
      '| sent | delivered | out of order | after deadline | beyond tolerance | late (dropped) | gaps skipped | expired at sender | p50 ms | p99 ms | max ms |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      `| ${d.braid.count} | ${d.delivered} | ${d.outOfOrder} | ${d.afterDeadline} | ${d.afterDeadlineTolerance} | ${d.late} | ` +
        `${d.skipped} | ${d.expired} | ${ms(d.braid.p50Ms)} | ${ms(d.braid.p99Ms)} | ${ms(d.braid.maxMs)} |`,
      '',
    );
    lines.push(
      `Messages ${pathsNote(d.braid)}; emulator late max ${ms(d.braid.emulatorLateMaxMs)} ms.`,
      '',
    );
  }
  const o = report.loss;
  if (o !== undefined) {
    const rows = [o.braid, ...o.singles].map((r) => {
      const loss = r.count > 0 ? r.lost / r.count : Number.NaN;
      const sent = r.server?.stats;
      const extra =
        sent === undefined || sent.queued === 0
          ? '-'
          : (sent.copiesSent / sent.queued - 1).toFixed(2);
      return (
        `| ${r.label} | ${r.count} | ${r.lost} | ${pct(loss)} | ` +
        `${pct(r.error === undefined ? poissonUpper95(r.lost, r.count) : Number.NaN)} | ${extra} | ` +
        `${pathsNote(r)} |`
      );
    });
    lines.push(
      `**Loss first** (200 B at 1000/s, unreliable-unordered, priorities loss > throughput: ` +
        `duplication). Target: residual loss ≤ ${TARGETS.lossFactor} × the product of the ` +
        `paths' loss rates = ${pct(o.targetLoss)}; measured ${pct(o.residualLoss)} ` +
        `(95% upper bound ${pct(o.residualLossUpper95)}): **${verdict(o.met)}**. Best single ` +
        `path: ${o.bestSingleLoss === undefined ? '-' : `${o.bestSingleLoss.system} ${pct(o.bestSingleLoss.loss, 2)}`}. ` +
        `Extra copies: copies put on the wire per message, minus one (1.00 = every message ` +
        `sent twice; the extra bytes sent are that ratio of the payload).`,
      '',
      '| system | messages | lost | loss | 95% upper bound | extra copies / message | note |',
      '|---|---:|---:|---:|---:|---:|---|',
      ...rows,
      '',
    );
  }
  if (report.peaks.length > 0) lines.push(...formatPeaks(report.peaks), '');
  return lines.join('\n').trimEnd();
}

export function formatPeaks(peaks: PeakRow[]): string[] {
  return [
    `**Buffer peaks** of every Braid run: the client's reorder buffer (bytes; held messages ` +
      `of an unreliable-ordered session, sampled every 2 ms) and the server's send queue, ` +
      `against their configured bounds.`,
    '',
    '| run | system | reorder peak / bound | held messages peak / bound | send queue peak / bound | within |',
    '|---|---|---:|---:|---:|---|',
    ...peaks.map(
      (p) =>
        `| ${p.objective} | ${p.system} | ${kib(p.reorderBytes)} / ${kib(p.reorderBound)} | ` +
        `${p.heldMessages} / ${p.heldBound} | ${kib(p.sendQueueBytes)} / ${kib(p.sendBound)} | ` +
        `${p.within ? 'yes' : 'NO'} |`,
    ),
  ];
}

/** Whether every measured objective met its target (not-measured ones are ignored). */
export function objectivesMet(report: ObjectivesReport): boolean {
  const flags = [
    report.latency?.withinMargin,
    report.latency?.belowMptcp,
    report.jitter?.withinMargin,
    report.deadline?.met,
    report.loss?.met,
    ...report.peaks.map((p) => p.within),
  ];
  return flags.every((f) => f !== false);
}
