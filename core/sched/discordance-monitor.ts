import { BraidError } from '../util/errors.js';

/**
 * Discordance between objectives, per peer (paper §III-A, Fig. 2): "the fraction of
 * time during which it is impossible to select a single interface to optimize for both
 * metrics simultaneously", for latency/loss, jitter/loss and latency/jitter — once
 * strictly (any difference counts) and once with the tolerance ε (differences below ε
 * do not count: paths within ε of the best are all "best"). The paper found conflicts
 * rare, which is why a static priority order is enough (DESIGN §3); this monitor
 * checks that claim on the user's own uplinks and feeds the dashboard.
 *
 * Each `sample()` describes the paths from that moment until the next sample; time is
 * credited to the state in force. Time with fewer than two usable paths is not
 * observed (nothing to choose between), nor are gaps longer than `maxGapMs`.
 */
export type ObjectivePair = 'latency/loss' | 'jitter/loss' | 'latency/jitter';
export const OBJECTIVE_PAIRS: readonly ObjectivePair[] = [
  'latency/loss',
  'jitter/loss',
  'latency/jitter',
];

/** What the monitor reads of a path (PathView satisfies it). */
export interface DiscordancePath {
  usable: boolean;
  srtt: number;
  jitter: number;
  lossRate: number;
}

export interface DiscordanceConfig {
  epsilon?: { latencyMs?: number; jitterMs?: number; loss?: number };
  maxGapMs?: number;
}

export interface PairFigures {
  /** Fraction of observed time with a conflict, no tolerance. */
  strict: number;
  /** ...with the tolerance ε. */
  tolerant: number;
}

export interface DiscordanceSnapshot {
  observedMs: number;
  pairs: Record<ObjectivePair, PairFigures>;
}

const LATENCY = 0;
const JITTER = 1;
const LOSS = 2;
const PAIRS: ReadonlyArray<readonly [number, number]> = [
  [LATENCY, LOSS],
  [JITTER, LOSS],
  [LATENCY, JITTER],
];

export class DiscordanceMonitor {
  private readonly eps: [number, number, number];
  private readonly maxGapMs: number;
  private lastTime = NaN;
  /** Conflict state of the last sample per pair: [strict, tolerant]; -1 = not observed. */
  private readonly state = new Int8Array(PAIRS.length * 2).fill(-1);
  private readonly conflictMs = new Float64Array(PAIRS.length * 2);
  private observedMs = 0;

  constructor(config: DiscordanceConfig = {}) {
    this.eps = [
      config.epsilon?.latencyMs ?? 5,
      config.epsilon?.jitterMs ?? 5,
      config.epsilon?.loss ?? 0.005,
    ];
    this.maxGapMs = config.maxGapMs ?? 10_000;
    for (const v of [...this.eps, this.maxGapMs]) {
      if (!(Number.isFinite(v) && v >= 0)) {
        throw new BraidError('BRAID_ERR_CONFIG', 'discordance epsilon/gap must be >= 0', {
          value: v,
        });
      }
    }
  }

  /** The paths to one peer as they are at `now` (call on each estimator refresh). */
  sample(now: number, paths: readonly DiscordancePath[]): void {
    if (!Number.isNaN(this.lastTime) && now > this.lastTime && this.state[0] !== -1) {
      const dt = Math.min(now - this.lastTime, this.maxGapMs);
      this.observedMs += dt;
      for (let k = 0; k < this.state.length; k++) {
        if (this.state[k] === 1) this.conflictMs[k] = this.conflictMs[k]! + dt;
      }
    }
    this.lastTime = now;
    let usable = 0;
    for (const p of paths) if (p.usable) usable++;
    if (usable < 2) {
      this.state.fill(-1);
      return;
    }
    for (let k = 0; k < PAIRS.length; k++) {
      const [a, b] = PAIRS[k]!;
      this.state[2 * k] = conflict(paths, a, b, 0, 0) ? 1 : 0;
      this.state[2 * k + 1] = conflict(paths, a, b, this.eps[a]!, this.eps[b]!) ? 1 : 0;
    }
  }

  snapshot(): DiscordanceSnapshot {
    const obs = this.observedMs;
    const fig = (k: number): PairFigures => ({
      strict: obs === 0 ? 0 : this.conflictMs[2 * k]! / obs,
      tolerant: obs === 0 ? 0 : this.conflictMs[2 * k + 1]! / obs,
    });
    return {
      observedMs: obs,
      pairs: { 'latency/loss': fig(0), 'jitter/loss': fig(1), 'latency/jitter': fig(2) },
    };
  }
}

function metric(p: DiscordancePath, m: number): number {
  return m === LATENCY ? p.srtt : m === JITTER ? p.jitter : p.lossRate;
}

/** No usable path is within tolerance of the best for both metrics. */
function conflict(
  paths: readonly DiscordancePath[],
  a: number,
  b: number,
  epsA: number,
  epsB: number,
): boolean {
  let bestA = Infinity;
  let bestB = Infinity;
  for (const p of paths) {
    if (!p.usable) continue;
    bestA = Math.min(bestA, metric(p, a));
    bestB = Math.min(bestB, metric(p, b));
  }
  for (const p of paths) {
    if (!p.usable) continue;
    if (metric(p, a) <= bestA + epsA && metric(p, b) <= bestB + epsB) return false;
  }
  return true;
}
