import { defineConfig } from 'vitest/config';

/**
 * The lab's own config (`vitest run -c test/lab/vitest.config.ts`): the model and
 * scenario tests are fast and pure; lab.test.ts builds namespaces and moves real
 * traffic through the emulator, needs root and skips (saying why) without it.
 * Files run one at a time: a lab test's timing must not share the two cores.
 */
export default defineConfig({
  test: {
    include: ['test/lab/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
