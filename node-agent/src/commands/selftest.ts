import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { decodeSafetensors } from '@barnraise/protocol'
import { rowPasses } from '../selftest/check-row.ts'
import type { CheckRow } from '../selftest/check-row.ts'
import { runBuiltinChecks } from '../selftest/builtin-checks.ts'
import { checkGoldenFile } from '../selftest/golden-checks.ts'

const USAGE = 'usage: barnraise-agent selftest [--golden FILE]\n'

/** Where the command writes; tests pass their own. */
export interface SelftestIo { stdout: { write: (s: string) => unknown }, stderr: { write: (s: string) => unknown } }

/**
 * `barnraise-agent selftest [--golden FILE]`: proves this machine's arithmetic matches the
 * reference. Without arguments runs the built-in checks; with --golden, checks one golden
 * file (kind llama-forward-backward, adamw or nesterov-outer) tensor by tensor. The last line
 * is `selftest: PASS max_rel_err=<x>` or `selftest: FAIL …`; exit 0 on pass, 1 on a mismatch,
 * 2 on bad usage or an unreadable file.
 */
export async function runSelftestCommand (argv: string[], io: SelftestIo = process): Promise<number> {
  let golden: string | undefined
  try {
    const { values } = parseArgs({ args: argv, options: { golden: { type: 'string' } }, strict: true, allowPositionals: false })
    golden = values.golden
  } catch (err) {
    io.stderr.write(`selftest: ${(err as Error).message}\n${USAGE}`)
    return 2
  }
  let rows: CheckRow[]
  try {
    if (golden === undefined) rows = await runBuiltinChecks()
    else rows = checkGoldenFile(decodeSafetensors(await readFile(golden)))
  } catch (err) {
    const what = golden === undefined ? 'built-in checks' : golden
    const message = `${what}: ${(err as Error).message}`
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
