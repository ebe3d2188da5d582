import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { mptcpizeAvailable, runBaselines, type ScenarioReport } from './baselines.js';
import { formatFidelity, measureFidelity, type FidelityResult } from './fidelity.js';
import { labUnavailableReason } from './netns.js';
import { describeUplink, listScenarios, loadScenario } from './scenario.js';
import { mbps } from './stats.js';

/**
 * `npx tsx test/lab/run.ts [scenario ...|all] [--cc cubic] [--ms 10000] [--json out.json]`
 * Checks the emulator's fidelity, then runs the baselines (plain TCP per uplink,
 * kernel MPTCP over all) of each scenario and prints one table per scenario.
 */

/** Release lateness beyond this means the emulator, not the link, shaped the traffic. */
const STALL_WARN_MS = 20;
const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : '-');

/** Longest run of empty 100 ms bins after the first byte, ms. */
function longestStallMs(bins: number[], binMs: number): number {
  let longest = 0;
  let run = 0;
  for (const b of bins) {
    run = b === 0 ? run + 1 : 0;
    if (run > longest) longest = run;
  }
  return longest * binMs;
}

export function formatReport(report: ScenarioReport): string {
  const s = report.scenario;
  const nominal = s.uplinks.reduce((sum, u) => sum + (u.downRateMbps ?? u.rateMbps), 0);
  const lines = [
    `### ${s.name}: ${s.description}`,
    '',
    `${s.uplinks.map(describeUplink).join(' | ')}; ${s.direction ?? 'download'}, ` +
      `${report.durationMs / 1000} s bulk, congestion control ${report.congestionControl}`,
    '',
    '| system | goodput Mbit/s | / sum of singles | / best single | longest stall ms | note |',
    '|---|---:|---:|---:|---:|---|',
  ];
  for (const run of report.runs) {
    const g = run.result.goodputBps;
    let note = '';
    if (run.mptcp !== undefined) {
      note = run.mptcp.capable
        ? `MP_CAPABLE, ${run.mptcp.joins} subflow joins`
        : 'fell back to TCP';
    }
    lines.push(
      `| ${run.label} | ${mbps(g)} | ${ratio(g, report.sumSinglesBps)} | ${ratio(g, report.best.goodputBps)} | ` +
        `${longestStallMs(run.result.bins, run.result.binMs)} | ${note} |`,
    );
  }
  lines.push(
    `| best single path (${report.best.uplink}) | ${mbps(report.best.goodputBps)} | ` +
      `${ratio(report.best.goodputBps, report.sumSinglesBps)} | 1.00 | | |`,
    `| sum of singles | ${mbps(report.sumSinglesBps)} | 1.00 | ${ratio(report.sumSinglesBps, report.best.goodputBps)} | | nominal ${nominal} Mbit/s |`,
  );
  // The emulator's own health during the runs: a forwarder that could not keep up
  // (a starved core) shows as late releases and would taint the numbers above.
  const late = report.runs.flatMap((r) => r.links);
  const worst = late.reduce((m, l) => Math.max(m, l.lateMaxMs), 0);
  const mean = late.reduce((m, l) => Math.max(m, l.lateMeanMs), 0);
  lines.push(
    '',
    `emulator: release lateness worst mean ${(mean * 1000).toFixed(0)} µs, max ${worst.toFixed(1)} ms` +
      (worst > STALL_WARN_MS
        ? ` — WARNING: a forwarder stalled over ${STALL_WARN_MS} ms, rerun on an idle machine`
        : ''),
  );
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      cc: { type: 'string', default: 'cubic' },
      ms: { type: 'string' },
      json: { type: 'string' },
      'no-mptcp': { type: 'boolean', default: false },
      'no-fidelity': { type: 'boolean', default: false },
    },
  });
  const reason = labUnavailableReason();
  if (reason !== null) {
    process.stderr.write(`lab: cannot run: ${reason}\n`);
    return 2;
  }
  const names =
    positionals.length === 0 || positionals.includes('all') ? listScenarios() : positionals;
  const scenarios = names.filter((n) => n !== 'fidelity').map(loadScenario);
  const skipMptcp = values['no-mptcp'] || !mptcpizeAvailable();
  if (skipMptcp && !values['no-mptcp'])
    process.stderr.write('lab: mptcpize not found (apt-get install mptcpd): MPTCP skipped\n');
  const progress = (line: string): void => void process.stderr.write(line + '\n');
  const cc = values.cc;

  let fidelity: FidelityResult | undefined;
  let failed = false;
  if (!values['no-fidelity'] || names.includes('fidelity')) {
    progress('lab: fidelity check ...');
    fidelity = await measureFidelity({ congestionControl: cc });
    process.stdout.write(formatFidelity(fidelity) + '\n\n');
    failed ||= fidelity.ratio < 0.9;
  }
  const reports: ScenarioReport[] = [];
  for (const scenario of scenarios) {
    const report = await runBaselines(scenario, {
      congestionControl: cc,
      skipMptcp,
      progress,
      ...(values.ms === undefined ? {} : { durationMs: Number(values.ms) }),
    });
    reports.push(report);
    process.stdout.write(formatReport(report) + '\n\n');
  }
  if (values.json !== undefined) {
    mkdirSync(dirname(values.json), { recursive: true });
    writeFileSync(values.json, JSON.stringify({ fidelity, reports }, null, 2) + '\n');
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
