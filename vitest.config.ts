// The whole suite: one vitest project per package, plus the cross-package tests in test/.
// Unit projects run their files in parallel; files that start real processes (the coordinator,
// agents, a browser, Python) form a group of their own that runs one file at a time and never
// beside a unit file, because two such files at once on a 2-core machine make their deadlines a
// matter of luck. (vitest runs groups one after another; with one worker, as on 2 cores, the unit
// projects become a sequential group of their own that runs after the process group.)
import { defineConfig } from 'vitest/config'
import type { TestProjectInlineConfiguration } from 'vitest/config'

/** Test files outside test/ that start real child processes: they join the one-at-a-time group. */
const PROCESS_FILES = ['node-agent/src/executors/torch-executor.test.ts', 'node-agent/src/executors/torch-scoring.test.ts', 'coordinator/src/checkpoints/torch-evaluation.test.ts']

const UNIT_GROUP = 0
const PROCESS_GROUP = 1

/** A package's tests beside its code, minus the ones that start real processes. */
function unitProject (name: string, dir: string): TestProjectInlineConfiguration {
  return {
    extends: true,
    test: {
      name,
      include: [`${dir}/**/*.test.ts`],
      exclude: ['**/node_modules/**', ...PROCESS_FILES],
      sequence: { groupOrder: UNIT_GROUP }
    }
  }
}

export default defineConfig({
  test: {
    // Deadline-based tests and real training steps: the same generous bound node:test had.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    teardownTimeout: 600_000,
    env: {
      // Storage tests make their own databases on this server.
      DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      BARNRAISE_LOG: process.env.BARNRAISE_LOG ?? 'silent'
    },
    // The trainer's gradient pool starts worker threads on .ts files, which Node strips itself.
    execArgv: ['--disable-warning=ExperimentalWarning'],
    coverage: {
      provider: 'v8',
      reportsDirectory: 'coverage',
      reporter: ['text-summary', 'html', 'lcov'],
      include: ['protocol/src/**', 'trainer/src/**', 'migrations/src/**', 'coordinator/src/**', 'node-agent/src/**', 'web/src/**'],
      exclude: ['**/*.test.ts', '**/*.test.tsx']
    },
    projects: [
      unitProject('protocol', 'protocol/src'),
      unitProject('trainer', 'trainer/src'),
      unitProject('datasets', 'datasets/src'),
      unitProject('migrations', 'migrations/src'),
      unitProject('coordinator', 'coordinator/src'),
      unitProject('node-agent', 'node-agent/src'),
      // The dashboard's pure logic only; its pages are tested in a real browser from test/.
      unitProject('web', 'web/src'),
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts', ...PROCESS_FILES],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: PROCESS_GROUP }
        }
      }
    ]
  }
})
