import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BraidError } from '../../core/util/errors.js';
import type { LinkDir } from './link-control.js';
import { burstLoss, type DirectionParams, type Trace } from './link-model.js';
import type { UplinkSpec } from './topology.js';

/**
 * Scenarios are data (test/lab/scenarios/*.json). Conventions, chosen so that the
 * numbers read like what a user's tools report:
 * - `rttMs` is the round-trip propagation delay, split evenly: each direction gets
 *   rttMs / 2 of one-way delay. Queueing and serialisation come on top.
 * - `jitterMs` is the RTT variation: each direction draws uniformly within
 *   ±jitterMs / 2, so the RTT stays within ±jitterMs. Packets are not reordered
 *   unless `reorder` is set (a packet never overtakes its predecessor).
 * - `loss` is the probability of losing a packet in each direction independently;
 *   `burstLoss` adds Gilbert-Elliott bursts with that mean loss rate and burst length.
 * - `rateMbps` is the bottleneck rate of IP packets (headers included) in each
 *   direction; `upRateMbps` / `downRateMbps` override one direction.
 * - The drop-tail queue holds `queueMs` worth of bytes at the rate (default: one
 *   bandwidth-delay product, at least 20 ms), or `queueBytes`.
 * - `events` happen at `atMs` after the measured transfer starts, on one uplink.
 * - `trace` names a file under test/lab/traces/ replayed from the start of each run.
 */

export interface UplinkScenario {
  name: string;
  rateMbps: number;
  upRateMbps?: number;
  downRateMbps?: number;
  rttMs: number;
  jitterMs?: number;
  loss?: number;
  burstLoss?: { loss: number; meanBurst: number };
  queueMs?: number;
  queueBytes?: number;
  reorder?: boolean;
  trace?: string;
}

export interface ScenarioEvent {
  atMs: number;
  uplink: string;
  dir?: LinkDir;
  set: Partial<DirectionParams>;
}

export interface Scenario {
  name: string;
  description: string;
  uplinks: UplinkScenario[];
  events?: ScenarioEvent[];
  /** Length of each bulk measurement, ms. */
  durationMs: number;
  /** Download: the server sends to the client (the common case for a laptop). */
  direction?: 'download' | 'upload';
  /** Server addresses (1: single-homed). */
  serverAddresses?: number;
  /**
   * A link shared by every uplink on the way to the server (same conventions as an
   * uplink's, no trace): the uplinks end at a router that forwards over it.
   */
  bottleneck?: Omit<UplinkScenario, 'name' | 'trace'>;
  /** Run the coupled congestion control fairness test on this scenario (needs a bottleneck). */
  fairness?: boolean;
}

/** A trace as stored: RTT and rate in the units of the scenario files. */
export interface TraceFile {
  description: string;
  loopMs?: number;
  points: Array<{ atMs: number; rateMbps?: number; rttMs?: number; loss?: number }>;
}

export const scenarioDir = fileURLToPath(new URL('./scenarios/', import.meta.url));
export const traceDir = fileURLToPath(new URL('./traces/', import.meta.url));

export function listScenarios(): string[] {
  return readdirSync(scenarioDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Loads a scenario by name (a file in scenarios/) or by path. */
export function loadScenario(nameOrPath: string): Scenario {
  const path = nameOrPath.endsWith('.json')
    ? resolve(nameOrPath)
    : join(scenarioDir, `${nameOrPath}.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new BraidError('BRAID_ERR_CONFIG', `cannot read scenario ${path}`, {
      value: nameOrPath,
      cause: err,
    });
  }
  return validateScenario(raw, dirname(path));
}

function fail(field: string, value: unknown): never {
  throw new BraidError('BRAID_ERR_CONFIG', `scenario field ${field} is invalid`, { value });
}

function num(
  obj: Record<string, unknown>,
  key: string,
  where: string,
  optional: boolean,
  min = 0,
  max = Infinity,
): void {
  const v = obj[key];
  if (v === undefined && optional) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    fail(`${where}.${key}`, v);
}

export function validateScenario(raw: unknown, _baseDir = scenarioDir): Scenario {
  if (typeof raw !== 'object' || raw === null) fail('(root)', raw);
  const s = raw as Record<string, unknown>;
  if (typeof s.name !== 'string' || s.name === '') fail('name', s.name);
  if (typeof s.description !== 'string') fail('description', s.description);
  num(s, 'durationMs', 'scenario', false, 1000);
  num(s, 'serverAddresses', 'scenario', true, 1, 16);
  if (s.direction !== undefined && s.direction !== 'download' && s.direction !== 'upload') {
    fail('direction', s.direction);
  }
  if (!Array.isArray(s.uplinks) || s.uplinks.length === 0) fail('uplinks', s.uplinks);
  const names = new Set<string>();
  (s.uplinks as unknown[]).forEach((u, i) => {
    const where = `uplinks[${i}]`;
    if (typeof u !== 'object' || u === null) fail(where, u);
    const up = u as Record<string, unknown>;
    if (typeof up.name !== 'string' || !/^[a-z0-9-]{1,20}$/.test(up.name) || names.has(up.name)) {
      fail(`${where}.name`, up.name);
    }
    names.add(up.name);
    num(up, 'rateMbps', where, false, 0.01, 10_000);
    num(up, 'upRateMbps', where, true, 0.01, 10_000);
    num(up, 'downRateMbps', where, true, 0.01, 10_000);
    num(up, 'rttMs', where, false, 0, 10_000);
    num(up, 'jitterMs', where, true, 0, 10_000);
    num(up, 'loss', where, true, 0, 1);
    num(up, 'queueMs', where, true, 0.1, 10_000);
    num(up, 'queueBytes', where, true, 1500);
    if (up.reorder !== undefined && typeof up.reorder !== 'boolean')
      fail(`${where}.reorder`, up.reorder);
    if (up.trace !== undefined && typeof up.trace !== 'string') fail(`${where}.trace`, up.trace);
    if (up.burstLoss !== undefined) {
      const b = up.burstLoss as Record<string, unknown>;
      if (typeof b !== 'object' || b === null) fail(`${where}.burstLoss`, b);
      num(b, 'loss', `${where}.burstLoss`, false, 0, 0.99);
      num(b, 'meanBurst', `${where}.burstLoss`, false, 1);
    }
  });
  if (s.bottleneck !== undefined) {
    const b = s.bottleneck as Record<string, unknown>;
    if (typeof b !== 'object' || b === null) fail('bottleneck', b);
    num(b, 'rateMbps', 'bottleneck', false, 0.01, 10_000);
    num(b, 'rttMs', 'bottleneck', false, 0, 10_000);
    num(b, 'loss', 'bottleneck', true, 0, 1);
    num(b, 'queueMs', 'bottleneck', true, 0.1, 10_000);
  }
  if (s.fairness !== undefined && (s.fairness !== true || s.bottleneck === undefined))
    fail('fairness', s.fairness);
  if (s.events !== undefined) {
    if (!Array.isArray(s.events)) fail('events', s.events);
    (s.events as unknown[]).forEach((e, i) => {
      const where = `events[${i}]`;
      if (typeof e !== 'object' || e === null) fail(where, e);
      const ev = e as Record<string, unknown>;
      num(ev, 'atMs', where, false);
      if (typeof ev.uplink !== 'string' || !names.has(ev.uplink))
        fail(`${where}.uplink`, ev.uplink);
      if (ev.dir !== undefined && ev.dir !== 'c2s' && ev.dir !== 's2c' && ev.dir !== 'both') {
        fail(`${where}.dir`, ev.dir);
      }
      if (typeof ev.set !== 'object' || ev.set === null) fail(`${where}.set`, ev.set);
    });
  }
  return raw as Scenario;
}

/** The drop-tail limit for one direction: queueBytes, or queueMs at that direction's rate. */
function queueBytes(up: UplinkScenario, rateBps: number): number {
  if (up.queueBytes !== undefined) return up.queueBytes;
  const ms = up.queueMs ?? Math.max(up.rttMs, 20);
  return Math.max(3000, Math.round((rateBps * ms) / 8000));
}

/** Per-direction link parameters for one uplink (see the conventions above). */
export function directionParams(up: UplinkScenario, dir: 'c2s' | 's2c'): DirectionParams {
  const rateMbps = (dir === 'c2s' ? up.upRateMbps : up.downRateMbps) ?? up.rateMbps;
  const rateBps = rateMbps * 1e6;
  return {
    delayMs: up.rttMs / 2,
    jitterMs: (up.jitterMs ?? 0) / 2,
    reorder: up.reorder ?? false,
    lossRate: up.loss ?? 0,
    burst: up.burstLoss === undefined ? null : burstLoss(up.burstLoss.loss, up.burstLoss.meanBurst),
    rateBps,
    queueBytes: queueBytes(up, rateBps),
    down: false,
  };
}

/** The shared bottleneck's link parameters, when the scenario has one. */
export function bottleneckSpec(scenario: Scenario): Omit<UplinkSpec, 'name'> | undefined {
  const b = scenario.bottleneck;
  if (b === undefined) return undefined;
  const up = { ...b, name: 'bottleneck' };
  return { c2s: directionParams(up, 'c2s'), s2c: directionParams(up, 's2c'), seed: 999 };
}

export function uplinkSpecs(scenario: Scenario): UplinkSpec[] {
  return scenario.uplinks.map((up, i) => ({
    name: up.name,
    c2s: directionParams(up, 'c2s'),
    s2c: directionParams(up, 's2c'),
    seed: 1000 + i,
  }));
}

/** Loads an uplink's trace (RTT and Mbit/s) as a per-direction model trace. */
export function loadTrace(file: string): Trace {
  const path = resolve(traceDir, file);
  let raw: TraceFile;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as TraceFile;
  } catch (err) {
    throw new BraidError('BRAID_ERR_CONFIG', `cannot read trace ${path}`, {
      value: file,
      cause: err,
    });
  }
  if (!Array.isArray(raw.points) || raw.points.length === 0)
    fail(`trace ${file}.points`, raw.points);
  return {
    ...(raw.loopMs === undefined ? {} : { loopMs: raw.loopMs }),
    points: raw.points.map((p) => ({
      atMs: p.atMs,
      ...(p.rateMbps === undefined ? {} : { rateBps: p.rateMbps * 1e6 }),
      ...(p.rttMs === undefined ? {} : { delayMs: p.rttMs / 2 }),
      ...(p.loss === undefined ? {} : { lossRate: p.loss }),
    })),
  };
}

/** One line describing an uplink, for table headers. */
export function describeUplink(up: UplinkScenario): string {
  const parts = [`${up.rateMbps} Mbit/s`, `${up.rttMs} ms RTT`];
  if (up.jitterMs !== undefined && up.jitterMs > 0) parts.push(`±${up.jitterMs} ms jitter`);
  if (up.loss !== undefined && up.loss > 0) parts.push(`${+(up.loss * 100).toFixed(2)}% loss`);
  if (up.burstLoss !== undefined) parts.push(`${up.burstLoss.loss * 100}% bursty loss`);
  if (up.trace !== undefined) parts.push(`trace ${up.trace}`);
  return `${up.name} ${parts.join(' ')}`;
}
