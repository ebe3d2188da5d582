import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mptcpizeAvailable } from '../test/lab/baselines.js';
import { formatFidelity, measureFidelity, FIDELITY_MIN_RATIO } from '../test/lab/fidelity.js';
import { repoRoot } from '../test/lab/link.js';
import { labUnavailableReason } from '../test/lab/netns.js';
import { listScenarios, loadScenario } from '../test/lab/scenario.js';
import { formatFairness, runFairness, type FairnessReport } from '../test/lab/fairness.js';
import { runSuite, type SuiteReport } from '../test/lab/suite.js';
import {
  runObjectives,
  SCENARIO_OBJECTIVES,
  type ObjectivesReport,
} from '../test/lab/objectives.js';
import { formatObjectives, objectivesMet } from './lab-objectives-report.js';
import { failoverSvg, renderPng } from './lab-chart.js';
import { exactlyOnce, formatSuite } from './lab-report.js';

/**
 * `npm run bench` / `npm run bench -- lab [scenario ...] [--ms N] [--cc cubic]
 * [--messages 300] [--no-mptcp] [--no-objectives | --objectives-only | --fairness-only]
 * [--fair-rounds 9] [--bulk-rounds 3] [--out dir]`: the
 * emulator fidelity check, then every
 * scenario (or the named ones) with Braid, each single-path TCP and kernel MPTCP on
 * the same links (and, where a scenario asks, the shared-bottleneck fairness test, and
 * for b and e the objectives section: latency, jitter, loss, deadline; objectives.ts);
 * one table per scenario on stdout and, under
 * results/lab-<timestamp>/, the tables as Markdown and JSON and the failover chart.
 * Needs root (namespaces, TUN devices); says so and exits 2 otherwise. Exits 1 when
 * the emulator fails its fidelity check or a system delivered a byte other than
 * exactly once.
 */

const FAILOVER_SCENARIO = 'd-wifi-blackhole';

export async function runLabBench(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ms: { type: 'string' },
      cc: { type: 'string', default: 'cubic' },
      messages: { type: 'string', default: '300' },
      out: { type: 'string' },
      'no-mptcp': { type: 'boolean', default: false },
      'no-fidelity': { type: 'boolean', default: false },
      'no-objectives': { type: 'boolean', default: false },
      'objectives-only': { type: 'boolean', default: false },
      'fairness-only': { type: 'boolean', default: false },
      // Single rounds of the coupled share ranged 0.77–2.01× the TCP flow across labs
      // (the bottleneck's drop-tail phase decides who loses first), so a median of 5
      // landed either side of the 1.3 bound; 9 rounds narrow it at ~4 minutes more.
      'fair-rounds': { type: 'string', default: '9' },
      // Bulk windows per system, in rounds; the table gives each system's median.
      'bulk-rounds': { type: 'string', default: '3' },
    },
  });
  const reason = labUnavailableReason();
  if (reason !== null) {
    process.stderr.write(
      `bench lab: cannot run: ${reason}.\n` +
        `  Run it as root: sudo npm run bench -- lab   (or: npm run bench -- loopback, which needs no root)\n`,
    );
    return 2;
  }
  // Forwarders and load tools are child processes; they inherit a larger libuv pool.
  process.env.UV_THREADPOOL_SIZE ??= '16';
  const names =
    positionals.length === 0 || positionals.includes('all') ? listScenarios() : positionals;
  const scenarios = names.map(loadScenario);
  const skipMptcp = values['no-mptcp'] || !mptcpizeAvailable();
  if (skipMptcp && !values['no-mptcp'])
    process.stderr.write('bench lab: mptcpize not found (apt-get install mptcpd): MPTCP skipped\n');
  const progress = (line: string): void => void process.stderr.write(line + '\n');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = values.out ?? join(repoRoot, 'results', `lab-${stamp}`);
  mkdirSync(outDir, { recursive: true });
  const command = `npm run bench -- lab ${argv.join(' ')}`.trim();
  const markdown: string[] = [
    `# Lab benchmark ${new Date().toISOString()}`,
    '',
    `\`${command}\``,
    '',
  ];
  let failed = false;

  let fidelity: Awaited<ReturnType<typeof measureFidelity>> | undefined;
  const objectivesOnly = values['objectives-only'];
  if (!values['no-fidelity'] && !objectivesOnly && !values['fairness-only']) {
    progress('bench lab: emulator fidelity check ...');
    fidelity = await measureFidelity({ durationMs: 8000, congestionControl: values.cc });
    const text = formatFidelity(fidelity);
    process.stdout.write(text + '\n\n');
    markdown.push('## Emulator fidelity', '', text.replace(/\n/g, '\n\n'), '');
    if (fidelity.ratio < FIDELITY_MIN_RATIO) failed = true;
  }

  const reports: SuiteReport[] = [];
  const fairness: FairnessReport[] = [];
  const objectives: ObjectivesReport[] = [];
  markdown.push('## Scenarios', '');
  for (const scenario of scenarios) {
    if (
      !values['no-objectives'] &&
      !values['fairness-only'] &&
      SCENARIO_OBJECTIVES[scenario.name] !== undefined
    ) {
      const obj = await runObjectives(scenario, {
        congestionControl: values.cc,
        mptcp: !skipMptcp,
        progress,
      });
      objectives.push(obj);
      const text = formatObjectives(obj);
      process.stdout.write(text + '\n\n');
      markdown.push(text, '');
      if (!objectivesMet(obj))
        process.stdout.write(`!! ${scenario.name}: an objective missed its target\n\n`);
      // A message out of order is a broken guarantee, not a figure (lateness depends on
      // the machine too: reported, and flagged above).
      if ((obj.deadline?.outOfOrder ?? 0) > 0) failed = true;
      writeFileSync(join(outDir, 'lab.md'), markdown.join('\n') + '\n');
      writeFileSync(
        join(outDir, 'lab.json'),
        JSON.stringify({ command, fidelity, reports, fairness, objectives }, null, 2) + '\n',
      );
    }
    if (objectivesOnly) continue;
    if (values['fairness-only'] && scenario.fairness !== true) continue;
    const report = values['fairness-only']
      ? undefined
      : await runSuite(scenario, {
          congestionControl: values.cc,
          mptcp: !skipMptcp,
          messages: Number(values.messages),
          bulkRounds: Number(values['bulk-rounds']),
          progress,
          ...(values.ms === undefined ? {} : { bulkMs: Number(values.ms) }),
        });
    if (report !== undefined) {
      reports.push(report);
      const table = formatSuite(report);
      process.stdout.write(table + '\n\n');
      markdown.push(table, '');
    }
    if (scenario.fairness === true) {
      const fair = await runFairness(scenario, {
        congestionControl: values.cc,
        mptcp: !skipMptcp,
        progress,
        rounds: Number(values['fair-rounds']),
        ...(values.ms === undefined ? {} : { durationMs: Number(values.ms) }),
      });
      fairness.push(fair);
      const text = formatFairness(fair);
      process.stdout.write(text + '\n\n');
      markdown.push(text, '');
    }
    if (report !== undefined && !exactlyOnce(report)) {
      process.stdout.write(
        `!! ${scenario.name}: a system did not deliver every byte exactly once\n\n`,
      );
      failed = true;
    }
    // Written as we go, so an interrupted run keeps what it measured.
    writeFileSync(join(outDir, 'lab.md'), markdown.join('\n') + '\n');
    writeFileSync(
      join(outDir, 'lab.json'),
      JSON.stringify({ command, fidelity, reports, fairness, objectives }, null, 2) + '\n',
    );
  }

  const failover =
    reports.find((r) => r.scenario.name === FAILOVER_SCENARIO) ??
    reports.find((r) => (r.scenario.events ?? []).length > 0);
  if (failover !== undefined) {
    const svg = failoverSvg(failover);
    const base = join(outDir, `failover-${failover.scenario.name}`);
    writeFileSync(`${base}.svg`, svg);
    const why = await renderPng(svg, `${base}.png`);
    process.stdout.write(
      why === null
        ? `failover chart: ${base}.png (and .svg)\n`
        : `failover chart: ${base}.svg only; no PNG: ${why}\n`,
    );
  }
  process.stdout.write(`results: ${outDir}/lab.md, lab.json\n`);
  return failed ? 1 : 0;
}
