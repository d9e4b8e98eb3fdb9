import { test } from 'vitest'
import assert from 'node:assert/strict'
import { BatchSampler, unigramEntropy } from './batch-sampler.ts'
import { ShardError } from './shard.ts'

/** Tokens that encode their own position, so a window shows where it came from. */
function positional (n: number, base: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => base + i)
}

test('same seed, same batches; another seed, other batches', () => {
  const sources = [{ tokens: positional(1000, 0) }, { tokens: positional(500, 10_000) }]
  const a = new BatchSampler(sources, { batchSize: 4, seqLen: 16, seed: 42 })
  const b = new BatchSampler(sources, { batchSize: 4, seqLen: 16, seed: 42 })
  const c = new BatchSampler(sources, { batchSize: 4, seqLen: 16, seed: 43 })
  const first = a.next()
  assert.equal(first.length, 4 * 17)
  assert.deepEqual(first, b.next())
  assert.notDeepEqual(first, c.next())
  assert.notDeepEqual(a.next(), first, 'consecutive batches differ')
  // resuming at a step gives the same batch as reaching it
  const d = new BatchSampler(sources, { batchSize: 4, seqLen: 16, seed: 42 })
  d.seek(1)
  assert.deepEqual(d.next(), b.next())
  assert.equal(d.step, 2)
})

test('every window is contiguous and stays inside one source range', () => {
  const sources = [{ tokens: positional(300, 0), start: 100, end: 200 }, { tokens: positional(40, 10_000) }, { tokens: positional(5, 20_000) }]
  const s = new BatchSampler(sources, { batchSize: 8, seqLen: 9, seed: 7 })
  const seen = new Set<number>()
  for (let step = 0; step < 200; step++) {
    const batch = s.batchAt(step)
    for (let row = 0; row < 8; row++) {
      const w = batch.subarray(row * 10, row * 10 + 10)
      for (let t = 1; t < 10; t++) assert.equal(w[t], w[0] + t)
      const first = w[0]
      if (first < 10_000) assert.ok(first >= 100 && first + 10 <= 200, `window at ${first}`)
      else assert.ok(first >= 10_000 && first + 10 <= 10_040, `window at ${first}`)
      seen.add(first)
    }
  }
  // both usable sources are drawn from; the 5-token source (shorter than a window) never is
  assert.ok([...seen].some((f) => f < 10_000) && [...seen].some((f) => f >= 10_000 && f < 20_000))
  assert.ok(![...seen].some((f) => f >= 20_000))
  // 91 + 31 = 122 possible windows; 1600 draws should cover nearly all of them
  assert.ok(seen.size > 110, `only ${seen.size} distinct windows`)
})

test('bad sampler options are refused', () => {
  const tokens = positional(10, 0)
  assert.throws(() => new BatchSampler([{ tokens }], { batchSize: 1, seqLen: 10, seed: 1 }), ShardError)
  assert.throws(() => new BatchSampler([{ tokens, start: 5, end: 20 }], { batchSize: 1, seqLen: 2, seed: 1 }), ShardError)
  assert.throws(() => new BatchSampler([{ tokens }], { batchSize: 0, seqLen: 2, seed: 1 }), ShardError)
  assert.throws(() => new BatchSampler([], { batchSize: 1, seqLen: 2, seed: 1 }), ShardError)
  new BatchSampler([{ tokens }], { batchSize: 1, seqLen: 9, seed: 1 }).batchAt(0)
})

test('unigramEntropy is in nats per token', () => {
  assert.equal(unigramEntropy([5, 5, 5]), 0)
  assert.ok(Math.abs(unigramEntropy([1, 2]) - Math.LN2) < 1e-12)
  assert.ok(Math.abs(unigramEntropy(Uint8Array.from({ length: 256 * 4 }, (_, i) => i & 255)) - Math.log(256)) < 1e-12)
})
