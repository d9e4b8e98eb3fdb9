// The checks `barnraise-agent selftest` runs with no arguments: the matmul kernel against the
// plain triple loop, the shipped golden files, and finite differences on random tiny models.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeSafetensors } from '@barnraise/protocol'
import {
  GOLDEN_DIR, finiteDifferenceCheck, gradientCheckConfigs, gradientCheckModel, lossAndGrad, matmulABt, matmulABtNaive, relativeError
} from '@barnraise/trainer'
import type { CheckRow } from './check-row.ts'
import { checkGoldenFile } from './golden-checks.ts'

const GOLDEN_FILES = ['llama-tiny-gqa', 'llama-tiny-tied', 'adamw', 'nesterov-outer']

/** Blocked kernel vs triple loop on ragged shapes; both accumulate in float64, so they agree to float32 rounding. */
function matmulRow (): CheckRow {
  let worst = 0
  let seed = 12345
  const random = (n: number): Float32Array => Float32Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed / 2 ** 32 - 0.5
  })
  for (const [m, n, k] of [[37, 29, 53], [64, 64, 64], [5, 130, 7]]) {
    const a = random(m * k)
    const b = random(n * k)
    const want = new Float32Array(m * n)
    const got = new Float32Array(m * n)
    matmulABtNaive(a, b, want, m, n, k)
    matmulABt(a, b, got, m, n, k)
    worst = Math.max(worst, relativeError(got, want))
  }
  return { name: 'matmul kernel vs triple loop', value: worst, threshold: 1e-6, relErr: true }
}

/** Every built-in check, one row each (a golden file's row is its worst tensor). */
export async function runBuiltinChecks (): Promise<CheckRow[]> {
  const rows: CheckRow[] = [matmulRow()]
  for (const name of GOLDEN_FILES) {
    const fileRows = checkGoldenFile(decodeSafetensors(await readFile(join(GOLDEN_DIR, `${name}.safetensors`))))
    // The row closest to (or furthest past) its bar; a NaN row always wins.
    let worst = fileRows[0]
    for (const r of fileRows) if (!(r.value / r.threshold <= worst.value / worst.threshold)) worst = r
    rows.push({ ...worst, name: `golden ${name} (worst of ${fileRows.length})` })
  }
  for (const [i, { name, config }] of gradientCheckConfigs.entries()) {
    const { params, inputIds } = gradientCheckModel(config, 100 + i, 2, 7)
    const analytic = lossAndGrad(params, inputIds, 2, 7).grads.flat.slice()
    const result = finiteDifferenceCheck(params, inputIds, 2, 7, analytic, { perTensor: 12, seed: 7 + i })
    rows.push({ name: `finite differences, ${name}`, value: result.worst, threshold: 1, relErr: false, unit: 'err/tol' })
  }
  return rows
}
