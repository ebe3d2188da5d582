import { existsSync, writeFileSync } from 'node:fs';
import type { Scenario } from '../test/lab/scenario.js';
import type { SuiteReport, SystemReport } from '../test/lab/suite.js';

/**
 * The failover chart: goodput over time per uplink, one panel per system, as SVG,
 * rendered to PNG by Debian's Chromium through playwright-core. We chose the browser
 * over a home-made PNG encoder because the chart needs text (axis labels, legend,
 * titles): an own encoder would need a bitmap font and a rasteriser for it, while
 * Chromium is already a dependency of the dashboard tests and CI installs it. The
 * SVG is kept beside the PNG, and when Chromium is missing the bench says so and
 * still writes the SVG.
 */

export const CHROMIUM = '/usr/bin/chromium';
/** Plot resolution: the link samples are 100 ms bins; two are summed per point. */
const POINT_MS = 200;
const PANEL_W = 900;
const PANEL_H = 190;
const MARGIN = { left: 64, right: 170, top: 28, bottom: 34 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Mbit/s per POINT_MS from byte counts per `binMs` bins. */
function rates(bins: readonly number[], binMs: number): number[] {
  const per = Math.max(1, Math.round(POINT_MS / binMs));
  const out: number[] = [];
  for (let i = 0; i < bins.length; i += per) {
    let sum = 0;
    for (let k = i; k < i + per && k < bins.length; k++) sum += bins[k]!;
    out.push((sum * 8) / (per * binMs) / 1000);
  }
  return out;
}

/** Intervals during which an uplink was black-holed, from the scenario's events. */
function outages(scenario: Scenario): Array<{ uplink: string; fromMs: number; toMs: number }> {
  const result: Array<{ uplink: string; fromMs: number; toMs: number }> = [];
  const open = new Map<string, number>();
  for (const ev of [...(scenario.events ?? [])].sort((a, b) => a.atMs - b.atMs)) {
    if (ev.set.down === true) open.set(ev.uplink, ev.atMs);
    if (ev.set.down === false && open.has(ev.uplink)) {
      result.push({ uplink: ev.uplink, fromMs: open.get(ev.uplink)!, toMs: ev.atMs });
      open.delete(ev.uplink);
    }
  }
  for (const [uplink, fromMs] of open) result.push({ uplink, fromMs, toMs: Infinity });
  return result;
}

interface Line {
  name: string;
  colour: string;
  dashed: boolean;
  mbps: number[];
  /** Time of the first point, ms after the connection was up. */
  offsetMs: number;
}

function panelLines(system: SystemReport, uplinks: string[]): Line[] {
  const lines: Line[] = system.paths.map((p) => ({
    name: `${p.uplink} (link)`,
    colour: COLOURS[uplinks.indexOf(p.uplink) % COLOURS.length]!,
    dashed: false,
    mbps: rates(p.bytes, 100),
    offsetMs: 0,
  }));
  const bulk = system.bulk;
  if (bulk !== undefined) {
    // The receiver's bins start at its first byte; the link samples at "connected".
    lines.push({
      name: 'application total',
      colour: '#222222',
      dashed: true,
      mbps: rates(bulk.bins, bulk.binMs),
      offsetMs: Math.max(0, bulk.firstByteMs - (bulk.connectMs ?? 0)),
    });
  }
  return lines;
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= v) return m * step;
  return 10 * step;
}

/** One SVG with a panel per system; x is seconds since the connection was up. */
export function failoverSvg(report: SuiteReport): string {
  const scenario = report.scenario;
  const uplinks = scenario.uplinks.map((u) => u.name);
  const systems = report.systems.filter((s) => s.bulk !== undefined);
  const panels = systems.map((s) => ({ system: s, lines: panelLines(s, uplinks) }));
  const durationMs = report.bulkMs + 1000;
  const yMax = niceMax(
    Math.max(
      ...panels.flatMap((p) => p.lines.flatMap((l) => l.mbps)),
      ...scenario.uplinks.map((u) => u.downRateMbps ?? u.rateMbps),
    ),
  );
  const plotW = PANEL_W - MARGIN.left - MARGIN.right;
  const plotH = PANEL_H - MARGIN.top - MARGIN.bottom;
  const head = 44;
  const height = head + panels.length * PANEL_H;
  const x = (ms: number): number => MARGIN.left + (Math.min(ms, durationMs) / durationMs) * plotW;
  const y = (mbps: number): number => MARGIN.top + plotH - (Math.min(mbps, yMax) / yMax) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${PANEL_W}" height="${height}" ` +
      `viewBox="0 0 ${PANEL_W} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="20" font-size="15" font-weight="bold">${esc(`${scenario.name}: goodput per uplink over time`)}</text>`,
    `<text x="12" y="37" fill="#444">${esc(
      'solid: IP bytes the emulated link delivered to the client, Mbit/s per 200 ms; dashed: application goodput; grey: uplink black-holed',
    )}</text>`,
  ];
  panels.forEach((panel, k) => {
    const top = head + k * PANEL_H;
    out.push(`<g transform="translate(0 ${top})">`);
    out.push(
      `<text x="${MARGIN.left}" y="18" font-weight="bold">${esc(panel.system.label)}</text>`,
    );
    for (const o of outages(scenario)) {
      const x0 = x(o.fromMs);
      const x1 = x(o.toMs === Infinity ? durationMs : o.toMs);
      out.push(
        `<rect x="${x0}" y="${MARGIN.top}" width="${x1 - x0}" height="${plotH}" fill="#dddddd"/>`,
        `<text x="${x0 + 4}" y="${MARGIN.top + 12}" fill="#555" font-size="11">${esc(`${o.uplink} down`)}</text>`,
      );
    }
    // Axes, grid and ticks.
    for (let i = 0; i <= 4; i++) {
      const v = (yMax / 4) * i;
      out.push(
        `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#eeeeee"/>`,
        `<text x="${MARGIN.left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
      );
    }
    const stepS = durationMs > 12_000 ? 2 : 1;
    for (let s = 0; s * 1000 <= durationMs; s += stepS) {
      out.push(
        `<line x1="${x(s * 1000)}" x2="${x(s * 1000)}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#000"/>`,
        `<text x="${x(s * 1000)}" y="${MARGIN.top + plotH + 17}" text-anchor="middle">${s}</text>`,
      );
    }
    out.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#000"/>`,
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}" stroke="#000"/>`,
      `<text x="${MARGIN.left + plotW / 2}" y="${PANEL_H - 4}" text-anchor="middle">seconds since connected</text>`,
      `<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">Mbit/s</text>`,
    );
    panel.lines.forEach((line, j) => {
      const points = line.mbps
        .map((v, i) => `${x(line.offsetMs + i * POINT_MS).toFixed(1)},${y(v).toFixed(1)}`)
        .join(' ');
      out.push(
        `<polyline fill="none" stroke="${line.colour}" stroke-width="1.8"${line.dashed ? ' stroke-dasharray="5 3"' : ''} points="${points}"/>`,
      );
      const ly = MARGIN.top + 10 + j * 18;
      const lx = MARGIN.left + plotW + 14;
      out.push(
        `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${line.colour}" stroke-width="2.5"${line.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
        `<text x="${lx + 28}" y="${ly + 4}">${esc(line.name)}</text>`,
      );
    });
    out.push('</g>');
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Renders `svg` to a PNG file with Chromium; returns null, or why it could not. */
export async function renderPng(svg: string, file: string): Promise<string | null> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} not found (apt-get install chromium)`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage();
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
    const png = await page.locator('svg').screenshot({ type: 'png' });
    writeFileSync(file, png);
    return null;
  } finally {
    await browser.close();
  }
}
