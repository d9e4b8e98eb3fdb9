import { test } from 'vitest'
import assert from 'node:assert/strict'
import { DEFAULT_INSTALL_LIMITS, overInstallLimits } from './install-limits.ts'

test('a run within the limits passes; each limit it goes over is named with its flag', () => {
  assert.deepEqual(overInstallLimits({ paramCount: 1000, seqLen: 128, evalBatches: 4, keptReportBytes: 0 }, DEFAULT_INSTALL_LIMITS), [])
  const over = overInstallLimits({ paramCount: 7e9, seqLen: 32_768, evalBatches: 500, keptReportBytes: 7e9 * 64 * 4 }, DEFAULT_INSTALL_LIMITS)
  assert.deepEqual(over.map((o) => o.field), ['model', 'recipe.seqLen', 'evalBatches', 'defences.aggregation'])
  assert.match(over[0]!.message, /7\.00B parameters.*at most 1\.20B \(--max-params\)/)
  assert.match(over[1]!.message, /--max-seq-len/)
  assert.match(over[2]!.message, /--max-eval-batches/)
  assert.match(over[3]!.message, /1668\.9 GiB .* allows 8\.0 GiB \(--max-kept-report-mb\)/)
})
