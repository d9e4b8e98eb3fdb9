import { test } from 'vitest'
import assert from 'node:assert/strict'
import { MAX_TRAIN_SHARDS, describeSpecErrors, runSpecSchema } from './run-spec.ts'

const sha = (i: number): string => i.toString(16).padStart(64, '0')
const refusal = (dataset: unknown): Array<{ field: string, message: string }> => {
  const parsed = runSpecSchema.safeParse({ name: 'r', rounds: 1, dataset })
  assert.equal(parsed.success, false, 'refused')
  return describeSpecErrors(parsed.error!)
}

test(`a spec names at most ${MAX_TRAIN_SHARDS} train shards, each once`, () => {
  const many = Array.from({ length: MAX_TRAIN_SHARDS }, (_, i) => sha(i + 1))
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 1, dataset: { source: 'shards', train: many, validation: sha(0) } }).dataset.source, 'shards')
  assert.deepEqual(refusal({ source: 'shards', train: [...many, sha(MAX_TRAIN_SHARDS + 1)], validation: sha(0) }), [{ field: 'dataset.train', message: `at most ${MAX_TRAIN_SHARDS} train shards` }])
  assert.deepEqual(refusal({ source: 'shards', train: [sha(1), sha(2), sha(1)], validation: sha(0) }), [{ field: 'dataset.train', message: 'name each shard once; this list repeats a sha256' }])
  // The review's 100,000 copies of one demo shard.
  assert.equal(refusal({ source: 'shards', train: Array.from({ length: 100_000 }, () => sha(1)), validation: sha(0) })[0]!.field, 'dataset.train')
})

test('a URL manifest names each train shard once, and at most as many', () => {
  const shard = (i: number): { url: string, sha256: string, tokens: number } => ({ url: `https://data.example/${i}.bin`, sha256: sha(i), tokens: 10 })
  const base = { source: 'urls', tokenizer: 'byte', validation: { url: 'https://data.example/v.bin', sha256: sha(0) } }
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 1, dataset: { ...base, train: [shard(1), shard(2)] } }).dataset.source, 'urls')
  assert.deepEqual(refusal({ ...base, train: [shard(1), { ...shard(2), sha256: sha(1) }] }), [{ field: 'dataset.train', message: 'name each shard once; this list repeats a sha256' }])
  assert.equal(refusal({ ...base, train: Array.from({ length: MAX_TRAIN_SHARDS + 1 }, (_, i) => shard(i + 1)) })[0]!.message, `at most ${MAX_TRAIN_SHARDS} train shards`)
})
