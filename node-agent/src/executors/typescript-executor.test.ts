import { test } from 'vitest'
import assert from 'node:assert/strict'
import { presetConfig } from '@barnraise/trainer'
import { TypeScriptExecutor, typescriptRefusal } from './typescript-executor.ts'
import { syntheticUnit } from './synthetic-unit.ts'

test('the TypeScript executor refuses GPU-sized models and units it cannot finish before the deadline, saying why', async () => {
  const big = typescriptRefusal(syntheticUnit(presetConfig('125m'), { innerSteps: 1, batchSize: 1, seqLen: 8 }), 8)
  assert.equal(big?.code, 'ERR_UNIT_TOO_LARGE')
  assert.match(big?.message ?? '', /up to 50M parameters.*has 124M.*--executor torch/)

  const now = Date.now()
  const slow = syntheticUnit(presetConfig('medium'), { innerSteps: 1000, batchSize: 8, seqLen: 1024 })
  const tooSlow = typescriptRefusal({ ...slow, deadline: new Date(now + 60_000).toISOString() }, 2, now)
  assert.equal(tooSlow?.code, 'ERR_UNIT_TOO_SLOW')
  assert.match(tooSlow?.message ?? '', /8,192,000 tokens of a 23\.3M-parameter model: at least \d+ s on 2 CPU threads.*closes in 60 s/)
  // A past deadline (or a skewed clock) is left to the coordinator.
  assert.equal(typescriptRefusal({ ...slow, deadline: new Date(now - 1000).toISOString() }, 2, now), undefined)

  const executor = new TypeScriptExecutor({ threads: 1 })
  assert.equal(executor.kind, 'typescript')
  assert.equal(await executor.check(syntheticUnit(presetConfig('tiny'), { innerSteps: 10, batchSize: 4, seqLen: 32 })), undefined)
})
