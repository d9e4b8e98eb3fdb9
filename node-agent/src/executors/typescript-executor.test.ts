import { test } from 'vitest'
import assert from 'node:assert/strict'
import { presetConfig } from '@barnraise/trainer'
import { TypeScriptExecutor, typescriptRefusal, typescriptTrainingBytes } from './typescript-executor.ts'
import { syntheticUnit } from './synthetic-unit.ts'

test('the TypeScript executor refuses GPU-sized models and units it cannot finish before the deadline, saying why', async () => {
  const big = typescriptRefusal(syntheticUnit(presetConfig('125m'), { innerSteps: 1, batchSize: 1, seqLen: 8 }), 8)
  assert.equal(big?.code, 'ERR_UNIT_TOO_LARGE')
  assert.match(big?.message ?? '', /up to 50M parameters.*has 124M.*--executor torch/)

  const now = Date.now()
  const slow = syntheticUnit(presetConfig('medium'), { innerSteps: 1000, batchSize: 8, seqLen: 1024 })
  const tooSlow = typescriptRefusal({ ...slow, deadline: new Date(now + 60_000).toISOString() }, 2, { now })
  assert.equal(tooSlow?.code, 'ERR_UNIT_TOO_SLOW')
  assert.match(tooSlow?.message ?? '', /8,192,000 tokens of a 23\.3M-parameter model at seqLen 1024: at least \d+ s on 2 CPU threads.*closes in 60 s/)
  // A past deadline (or a skewed clock) is left to the coordinator.
  assert.equal(typescriptRefusal({ ...slow, deadline: new Date(now - 1000).toISOString() }, 2, { now }), undefined)

  const executor = new TypeScriptExecutor({ threads: 1 })
  assert.equal(executor.kind, 'typescript')
  assert.equal(await executor.check(syntheticUnit(presetConfig('tiny'), { innerSteps: 10, batchSize: 4, seqLen: 32 })), undefined)
})

const GiB = 1024 ** 3

test('a long sequence is refused for its attention memory, which grows with seqLen², not for its parameter count', () => {
  // The review's case: a tiny model whose max_position_embeddings allows seqLen 8192, batch 64.
  const config = { ...presetConfig('tiny'), max_position_embeddings: 65536 }
  const machine = 23 * GiB
  const long = syntheticUnit(config, { innerSteps: 1, batchSize: 64, seqLen: 8192 })
  const refused = typescriptRefusal(long, 1, { memoryBytes: machine / 2 })
  assert.equal(refused?.code, 'ERR_UNIT_TOO_LARGE')
  assert.match(refused?.message ?? '', /seqLen 8192 × batch 64 needs ~\d+ GiB .*~\d+ GiB of it attention memory.*this node allows 12 GiB.*shorter seqLen or a smaller batch/)
  // 2 layers × 64 × 4 heads × 8192² floats of probabilities: 64 GiB before anything else.
  assert.ok(typescriptTrainingBytes(long, 1).attention > 64 * GiB)

  // The same model and batch at seqLen 256 fits easily.
  assert.equal(typescriptRefusal(syntheticUnit(config, { innerSteps: 1, batchSize: 64, seqLen: 256 }), 1, { memoryBytes: machine / 2 }), undefined)
  // seqLen 2048 × batch 2: ~0.27 GiB, refused only by a node that allows less.
  const mid = syntheticUnit(config, { innerSteps: 1, batchSize: 2, seqLen: 2048 })
  assert.equal(typescriptRefusal(mid, 1, { memoryBytes: GiB }), undefined)
  assert.equal(typescriptRefusal(mid, 1, { memoryBytes: 0.1 * GiB })?.code, 'ERR_UNIT_TOO_LARGE')
  // The default limit is half this machine's memory: seqLen 65536 × batch 2 needs ~130 GiB on any thread count.
  const huge = syntheticUnit(config, { innerSteps: 1, batchSize: 2, seqLen: 65536 })
  assert.match(typescriptRefusal(huge, 2)?.message ?? '', /2 threads of 1 row each.*half of this machine's/)
})

test('each thread holds its own workspace for its share of the batch', () => {
  const config = { ...presetConfig('tiny'), max_position_embeddings: 8192 }
  const unit = syntheticUnit(config, { innerSteps: 1, batchSize: 8, seqLen: 1024 })
  const one = typescriptTrainingBytes(unit, 1)
  const four = typescriptTrainingBytes(unit, 4)
  assert.deepEqual([four.shares, four.rowsPerShare], [4, 2])
  // Per-row attention is the same; the 4 T² of scratch per thread is what more threads add.
  assert.equal(four.attention - one.attention, 3 * 4 * 4 * 1024 ** 2)
  // More threads than rows: one row each, no idle workspaces.
  assert.equal(typescriptTrainingBytes(syntheticUnit(config, { innerSteps: 1, batchSize: 2, seqLen: 1024 }), 16).shares, 2)
})

test('the time estimate counts attention, which dominates a small model at a long sequence', () => {
  const now = Date.now()
  const config = { ...presetConfig('tiny'), max_position_embeddings: 8192 }
  // 0.11M parameters: 6·N·tokens is about 3 s at the optimistic rate; attention at seqLen 4096 is about 30 s more.
  const unit = { ...syntheticUnit(config, { innerSteps: 10, batchSize: 1, seqLen: 4096 }), deadline: new Date(now + 20_000).toISOString() }
  const slow = typescriptRefusal(unit, 1, { now, memoryBytes: 64 * GiB })
  assert.equal(slow?.code, 'ERR_UNIT_TOO_SLOW')
  assert.match(slow?.message ?? '', /at seqLen 4096: at least \d+ s on 1 CPU thread/)
})

test('--max-memory caps what the TypeScript trainer plans with, and a unit over it is refused naming the flag; it never raises the cap', async () => {
  const config = { ...presetConfig('tiny'), max_position_embeddings: 8192 }
  // ~0.27 GiB: fits half of a 16 GiB machine, not a 0.2 GiB cap.
  const mid = syntheticUnit(config, { innerSteps: 1, batchSize: 2, seqLen: 2048 })
  assert.equal(typescriptRefusal(mid, 1, { memoryBytes: 8 * GiB }), undefined)
  const refused = typescriptRefusal(mid, 1, { memoryBytes: 8 * GiB, maxMemoryBytes: GiB / 5 })
  assert.equal(refused?.code, 'ERR_UNIT_TOO_LARGE')
  assert.match(refused?.message ?? '', /this node allows 0\.2 GiB \(--max-memory\)\. Join with a larger --max-memory, ask the organizer/)
  // A cap above the machine's share leaves the share in charge.
  const share = typescriptRefusal(mid, 1, { memoryBytes: 0.1 * GiB, maxMemoryBytes: 64 * GiB })
  assert.doesNotMatch(share?.message ?? '', /--max-memory/)
  assert.match(share?.message ?? '', /this node allows 0\.1 GiB\. Ask the organizer/)
  // The executor the join flag builds says the same before any download.
  const executor = new TypeScriptExecutor({ threads: 1, maxMemoryBytes: GiB / 5 })
  try {
    assert.match((await executor.check(mid))?.message ?? '', /\(--max-memory\)/)
  } finally {
    await executor.close()
  }
})
