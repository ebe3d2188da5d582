import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/unit/**/*.test.ts',
      'test/integration/**/*.test.ts',
      'test/regressions/**/*.test.ts',
      'test/security/**/*.test.ts',
      // A short pass of each fuzz target; `npm run fuzz` runs a million inputs each.
      'test/fuzz/**/*.test.ts',
      // The dashboard in Chromium against the demo engine; builds the renderer if stale.
      'test/e2e/**/*.test.ts',
      // The lab's pure parts run in simulated time and need no root.
      'test/lab/link-model.test.ts',
      'test/lab/scenario.test.ts',
      'test/lab/payload.test.ts',
      'test/lab/fairness-summary.test.ts',
      'test/lab/lab-report.test.ts',
      // The lab's Braid server on loopback: its state folder goes however it ends.
      'test/lab/lab-relay.test.ts',
      // Real namespaces and traffic for a few seconds; needs root (CI), skips otherwise.
      'test/lab/smoke.test.ts',
      // Egress pinning with one default route: a few seconds of traffic; root only.
      'test/lab/egress.test.ts',
      // Unreliable-ordered with a playout deadline over lossy LTE (about 6 s); root only.
      'test/lab/objectives.test.ts',
    ],
    // Integration tests move hundreds of megabytes over real sockets; the two cores
    // of our CI machines are shared with the peer process.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
