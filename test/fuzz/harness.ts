/**
 * The fuzz loop shared by the targets in test/fuzz: fast-check under a time limit (as
 * undici does), with three guards beyond "no throw": the slowest single input (a hang
 * shows as one input taking long), the heap after a forced GC at the end against the
 * start (a leak), and the largest rise in ArrayBuffer memory seen between samples (an
 * allocation sized by an attacker's length field). `npm test` runs BRAID_FUZZ_RUNS
 * (default 3000) per target; `npm run fuzz` runs a million.
 */
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const RUNS = Number(process.env['BRAID_FUZZ_RUNS'] ?? 3000);
/** Whole-run limit: a slow machine stops early (reported, not failed). */
export const TIME_LIMIT_MS = Math.max(20_000, RUNS * 1.5);

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

export interface FuzzReport {
  name: string;
  runs: number;
  seed: number;
  interrupted: boolean;
  ms: number;
  slowestInputMs: number;
  heapGrowthBytes: number;
  maxArrayBufferRiseBytes: number;
}

/** Every this many inputs the ArrayBuffer total is sampled. */
const SAMPLE_EVERY = 256;

export function fuzz<T>(name: string, arb: fc.Arbitrary<T>, check: (input: T) => void): FuzzReport {
  gc();
  const heapStart = process.memoryUsage().heapUsed;
  let baseline = process.memoryUsage().arrayBuffers;
  let maxRise = 0;
  let slowest = 0;
  let n = 0;
  const started = performance.now();
  const details = fc.check(
    fc.property(arb, (input) => {
      const t = performance.now();
      check(input);
      const took = performance.now() - t;
      if (took > slowest) slowest = took;
      if (++n % SAMPLE_EVERY === 0) {
        const now = process.memoryUsage().arrayBuffers;
        if (now - baseline > maxRise) maxRise = now - baseline;
        baseline = Math.min(baseline, now);
      }
    }),
    { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false },
  );
  if (details.failed)
    throw new Error(fc.defaultReportMessage(details) ?? `${name}: property failed`);
  gc();
  const report: FuzzReport = {
    name,
    runs: details.numRuns,
    seed: details.seed,
    interrupted: details.interrupted,
    ms: Math.round(performance.now() - started),
    slowestInputMs: Math.round(slowest * 100) / 100,
    heapGrowthBytes: process.memoryUsage().heapUsed - heapStart,
    maxArrayBufferRiseBytes: maxRise,
  };
  console.log(
    `fuzz ${name}: ${report.runs} inputs in ${report.ms} ms (seed ${report.seed}${
      report.interrupted ? ', stopped by the time limit' : ''
    }), slowest input ${report.slowestInputMs} ms, heap growth ${Math.round(
      report.heapGrowthBytes / 1024,
    )} KiB, largest ArrayBuffer rise ${Math.round(report.maxArrayBufferRiseBytes / 1024)} KiB`,
  );
  return report;
}

/** Bounds every target must keep (hang, leak, attacker-sized allocation). */
export const LIMITS = {
  // Generous: the machine is shared and a GC pause lands on some input; a hang is seconds.
  slowestInputMs: 1000,
  heapGrowthBytes: 32 * 1024 * 1024,
  maxArrayBufferRiseBytes: 16 * 1024 * 1024,
};

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'set'; at: number; value: number };

/** Bytes that make length fields their extremes or swallow what follows. */
const EDGE_BYTES = [0x00, 0x01, 0x03, 0x05, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xfe, 0xff];

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({
    kind: fc.constant('delete' as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 9 }),
  }),
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(...EDGE_BYTES), fc.nat({ max: 255 })),
  }),
);

export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(input);
  for (const m of mutations) {
    const at = m.at % (bytes.length + 1);
    switch (m.kind) {
      case 'flip':
        if (at < bytes.length) bytes[at]! ^= 1 << m.bit;
        break;
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
        break;
      case 'set':
        if (at < bytes.length) bytes[at] = m.value;
        break;
    }
  }
  return bytes;
}

/** Valid inputs from `valid`, damaged by 0-4 mutations, mixed with plain random bytes. */
export function damaged(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(valid, fc.array(mutationArb, { maxLength: 4 }))
        .map(([v, m]) => mutate(v, m)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)) },
  );
}

/** Split points for feeding an incremental parser in pieces. */
export const chunkingArb = fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 });

export function chunks(input: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (const s of sizes) {
    if (pos >= input.length) break;
    out.push(input.subarray(pos, pos + s));
    pos += s;
  }
  if (pos < input.length) out.push(input.subarray(pos));
  return out;
}
