import { defineConfig } from "vitest/config";

// Two cores in CI: two forked workers, generous per-test timeout for the end-to-end and fault suites.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
