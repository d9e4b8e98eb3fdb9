import { test } from 'vitest'
import assert from 'node:assert/strict'
import { presetConfig } from '@barnraise/trainer'
import { scoringRefusal } from './scoring-task.ts'

test('a scoring task this machine cannot carry is refused before anything is fetched: model size, work, memory', () => {
  const tiny = presetConfig('tiny')
  const gib = 2 ** 30
  assert.equal(scoringRefusal({ modelConfig: tiny, batchSize: 8, seqLen: 64 }, 16 * gib), undefined)
  // The schema allows seqLen 65,536: T² attention a layer.
  assert.match(scoringRefusal({ modelConfig: { ...tiny, max_position_embeddings: 65_536 }, batchSize: 64, seqLen: 65_536 }, 16 * gib) ?? '', /TFLOP|GiB/)
  assert.match(scoringRefusal({ modelConfig: tiny, batchSize: 8, seqLen: 1024 }, gib / 8) ?? '', /GiB of memory; this machine has 0\.1 GiB/)
  assert.match(scoringRefusal({ modelConfig: presetConfig('125m'), batchSize: 1, seqLen: 16 }, 64 * gib) ?? '', /past what this agent scores/)
})

test('--max-memory caps what scoring may use below half the machine, and a task over it is refused naming the flag', () => {
  const tiny = presetConfig('tiny')
  const gib = 2 ** 30
  const task = { modelConfig: tiny, batchSize: 8, seqLen: 1024 }
  assert.equal(scoringRefusal(task, 64 * gib), undefined)
  assert.match(scoringRefusal(task, 64 * gib, gib / 8) ?? '', /GiB of memory; --max-memory allows 0\.1 GiB/)
  // A cap above half the machine leaves the half in charge.
  assert.match(scoringRefusal(task, gib / 8, 64 * gib) ?? '', /this machine has 0\.1 GiB/)
  assert.equal(scoringRefusal({ ...task, seqLen: 64 }, 64 * gib, gib / 8), undefined, 'a task under the cap is scored')
})
