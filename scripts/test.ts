// Runs the whole suite with Node's test runner: unit tests beside the code, then the
// cross-package tests in test/. Storage tests use DATABASE_URL (default: the local server).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const patterns = [
  'protocol/src/**/*.test.ts',
  'trainer/src/**/*.test.ts',
  'migrations/src/**/*.test.ts',
  'coordinator/src/**/*.test.ts',
  'node-agent/src/**/*.test.ts',
  'test/**/*.test.ts'
]
const extra = process.argv.slice(2)

if (!existsSync(`${root}/web/dist/index.html`)) {
  process.stdout.write('test: building the dashboard first (web/dist is missing)\n')
  const build = spawnSync('pnpm', ['--filter', '@barnraise/web', 'build'], { cwd: root, stdio: 'inherit' })
  if (build.status !== 0) process.exit(build.status ?? 1)
}

const result = spawnSync(process.execPath, [
  '--disable-warning=ExperimentalWarning',
  '--test',
  '--test-reporter=spec',
  // One file at a time: the integration tests run several real processes each, and two such
  // files at once on a 2-core machine make their deadlines a matter of luck.
  `--test-concurrency=${process.env.TEST_CONCURRENCY ?? '1'}`,
  '--test-timeout=600000',
  ...(extra.length > 0 ? extra : patterns)
], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    BARNRAISE_LOG: process.env.BARNRAISE_LOG ?? 'silent'
  }
})
process.exit(result.status ?? 1)
