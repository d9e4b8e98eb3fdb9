// Runs the suite on vitest (projects and timeouts in vitest.config.ts): once, or in watch mode
// with --watch. Other arguments go to vitest as they are: files or patterns to run just those,
// --coverage for a v8 report in coverage/, --project NAME for one package. A single run ends with
// the plain line `N passed, N failed`, read from vitest's own JSON result.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureDashboardBuilt } from './dashboard-build.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const watch = args.includes('--watch') || args.includes('-w')

ensureDashboardBuilt(root, (line) => process.stdout.write(`${line}\n`), 'test')

const vitest = join(root, 'node_modules/vitest/vitest.mjs')
const resultDir = mkdtempSync(join(tmpdir(), 'barnraise-test-'))
const resultFile = join(resultDir, 'result.json')
const reporters = watch ? [] : ['--reporter=default', '--reporter=json', `--outputFile.json=${resultFile}`]
const forwarded = args.filter((arg) => !['--watch', '-w', '--run'].includes(arg))

const run = spawnSync(process.execPath, [vitest, watch ? 'watch' : 'run', ...reporters, ...forwarded], {
  cwd: root,
  stdio: 'inherit'
})

if (!watch) process.stdout.write(`${summary()}\n`)
rmSync(resultDir, { recursive: true, force: true })
process.exit(run.status ?? 1)

/** The part of vitest's JSON reporter output the summary reads. */
interface JsonResult {
  numPassedTests: number
  numFailedTests: number
  numPendingTests: number
  numTodoTests: number
  testResults: Array<{ status: string, assertionResults: Array<{ status?: unknown }> }>
}

function isJsonResult (value: unknown): value is JsonResult {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return ['numPassedTests', 'numFailedTests', 'numPendingTests', 'numTodoTests'].every((key) => typeof v[key] === 'number') &&
    Array.isArray(v.testResults)
}

/** `N passed, N failed` (and skipped or todo when there are any) from vitest's JSON result. */
function summary (): string {
  if (!existsSync(resultFile)) return `vitest ended (exit ${run.status ?? run.signal}) without a result: 0 passed, 0 failed`
  const result: unknown = JSON.parse(readFileSync(resultFile, 'utf8'))
  if (!isJsonResult(result)) return `vitest wrote a result this script cannot read (${resultFile}): 0 passed, 0 failed`
  const parts = [`${result.numPassedTests} passed`, `${result.numFailedTests} failed`]
  if (result.numPendingTests > 0) parts.push(`${result.numPendingTests} skipped`)
  if (result.numTodoTests > 0) parts.push(`${result.numTodoTests} todo`)
  // A file that fails to load, or whose beforeAll throws (its tests then count as skipped), has
  // no failed test, only a failed suite: count it too.
  const brokenFiles = result.testResults.filter((file) => file.status === 'failed' && !file.assertionResults.some((a) => a.status === 'failed')).length
  if (brokenFiles > 0) parts.push(`${brokenFiles} file${brokenFiles === 1 ? '' : 's'} failed outside a test (loading, or a hook)`)
  return parts.join(', ')
}
