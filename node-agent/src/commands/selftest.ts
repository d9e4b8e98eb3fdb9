import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { decodeSafetensors } from '@barnraise/protocol'
import { GOLDEN_DIR } from '@barnraise/trainer'
import { ExecutorError } from '../executors/executor-error.ts'
import { TorchExecutor } from '../executors/torch-executor.ts'
import { rowPasses } from '../selftest/check-row.ts'
import type { CheckRow } from '../selftest/check-row.ts'
import { runBuiltinChecks } from '../selftest/builtin-checks.ts'
import { checkGoldenFile } from '../selftest/golden-checks.ts'

const USAGE = 'usage: barnraise-agent selftest [--golden FILE] [--executor typescript|torch] [--device cpu|cuda|cuda:N] [--python PATH]\n'

/** The golden files the no-argument torch self-test checks (the TypeScript one adds kernel and finite-difference rows). */
const TORCH_GOLDEN_FILES = ['llama-tiny-gqa', 'llama-tiny-tied', 'adamw', 'nesterov-outer']

/** The torch child's rows: each golden file (or the one given) checked in float32 on its device. */
async function torchRows (golden: string | undefined, options: { device: string, python?: string }, io: SelftestIo): Promise<CheckRow[]> {
  const torch = await TorchExecutor.start({ device: options.device, threads: 0, ...(options.python !== undefined ? { python: options.python } : {}) })
  io.stdout.write(`selftest: torch executor: ${torch.name} (${torch.python})\n`)
  try {
    const toRow = (r: { name: string, value: number | null, threshold: number, relErr: boolean, unit?: string | undefined }): CheckRow =>
      ({ name: r.name, value: r.value ?? Number.NaN, threshold: r.threshold, relErr: r.relErr, ...(r.unit !== undefined ? { unit: r.unit } : {}) })
    if (golden !== undefined) return (await torch.golden(resolve(golden))).map(toRow)
    const rows: CheckRow[] = []
    for (const name of TORCH_GOLDEN_FILES) {
      const fileRows = (await torch.golden(join(GOLDEN_DIR, `${name}.safetensors`))).map(toRow)
      let worst = fileRows[0]!
      for (const r of fileRows) if (!(r.value / r.threshold <= worst.value / worst.threshold)) worst = r
      rows.push({ ...worst, name: `golden ${name} (worst of ${fileRows.length})` })
    }
    return rows
  } finally {
    await torch.close()
  }
}

/** Where the command writes; tests pass their own. */
export interface SelftestIo { stdout: { write: (s: string) => unknown }, stderr: { write: (s: string) => unknown } }

/**
 * `barnraise-agent selftest [--golden FILE] [--executor typescript|torch]`: proves this
 * machine's arithmetic matches the reference. Without arguments runs the built-in checks; with
 * --golden, checks one golden file (kind llama-forward-backward, adamw or nesterov-outer)
 * tensor by tensor. `--executor torch` runs the same files through the PyTorch child (float32
 * on --device). The last line is `selftest: PASS max_rel_err=<x>` or `selftest: FAIL …`;
 * exit 0 on pass, 1 on a mismatch, 2 on bad usage, an unreadable file or an executor that
 * cannot start.
 */
export async function runSelftestCommand (argv: string[], io: SelftestIo = process): Promise<number> {
  let golden: string | undefined
  let executor = 'typescript'
  let device = 'cpu'
  let python: string | undefined
  try {
    const { values } = parseArgs({
      args: argv,
      options: { golden: { type: 'string' }, executor: { type: 'string', default: 'typescript' }, device: { type: 'string', default: 'cpu' }, python: { type: 'string' } },
      strict: true,
      allowPositionals: false
    })
    golden = values.golden
    executor = values.executor
    device = values.device
    python = values.python
    if (executor !== 'typescript' && executor !== 'torch') throw new Error('--executor must be typescript or torch')
  } catch (err) {
    io.stderr.write(`selftest: ${(err as Error).message}\n${USAGE}`)
    return 2
  }
  let rows: CheckRow[]
  try {
    if (executor === 'torch') rows = await torchRows(golden, { device, ...(python !== undefined ? { python } : {}) }, io)
    else if (golden === undefined) rows = await runBuiltinChecks()
    else rows = checkGoldenFile(decodeSafetensors(await readFile(golden)))
  } catch (err) {
    const what = golden === undefined ? 'built-in checks' : golden
    const message = err instanceof ExecutorError ? `torch executor (${err.code}): ${err.message}` : `${what}: ${(err as Error).message}`
    io.stderr.write(`selftest: ${message}\n`)
    io.stdout.write(`selftest: FAIL ${message}\n`)
    return 2
  }
  io.stdout.write(formatTable(rows))
  const failed = rows.filter((r) => !rowPasses(r))
  const maxRelErr = rows.filter((r) => r.relErr).reduce((m, r) => Math.max(m, Number.isNaN(r.value) ? Infinity : r.value), 0)
  if (failed.length === 0) {
    io.stdout.write(`selftest: PASS max_rel_err=${maxRelErr.toExponential(2)}\n`)
    return 0
  }
  io.stdout.write(`selftest: FAIL ${failed.length} of ${rows.length} checks over their threshold (${failed.map((r) => r.name).join(', ')}) max_rel_err=${maxRelErr.toExponential(2)}\n`)
  return 1
}

function formatTable (rows: CheckRow[]): string {
  const width = Math.max(5, ...rows.map((r) => r.name.length))
  const lines = [`${'check'.padEnd(width)}  ${'error'.padStart(10)}  ${'threshold'.padStart(9)}  result`]
  for (const r of rows) {
    const value = Number.isNaN(r.value) ? 'NaN' : r.value.toExponential(2)
    const unit = r.relErr ? '' : ` (${r.unit ?? 'ratio'})`
    lines.push(`${r.name.padEnd(width)}  ${value.padStart(10)}  ${r.threshold.toExponential(0).padStart(9)}  ${rowPasses(r) ? 'ok' : 'FAIL'}${unit}`)
  }
  return lines.join('\n') + '\n'
}
