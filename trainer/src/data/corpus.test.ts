import { test } from 'vitest'
import assert from 'node:assert/strict'
import { unigramEntropy } from './batch-sampler.ts'
import { demoCorpusShards, loadDemoCorpus } from './corpus.ts'
import { decodeShard } from './shard.ts'

test('the demo corpus loads and shards deterministically with a 2% validation tail', async () => {
  const text = await loadDemoCorpus()
  assert.ok(text.length > 4_000_000)
  assert.match(text, /In the beginning God created the heaven and the earth\./)
  const { train, validation, vocabSize } = await demoCorpusShards()
  assert.equal(vocabSize, 256)
  assert.equal(await demoCorpusShards().then((d) => d.validation), validation, 'built once per process')
  const total = train.reduce((n, s) => n + s.manifest.tokens, 0) + validation.manifest.tokens
  assert.equal(total, new TextEncoder().encode(text).length)
  assert.ok(Math.abs(validation.manifest.tokens / total - 0.02) < 1e-3)
  assert.ok(train.length > 10)
  for (const s of [...train, validation]) assert.deepEqual(decodeShard(s.bytes).tokens, s.tokens)
  // the held-out tail is the end of Revelation
  assert.match(new TextDecoder().decode(decodeShard(validation.bytes).tokens as Uint8Array), /Amen\.\s*$/)
  // English bytes: far below log(256) = 5.55 nats, which a model must beat
  const h = unigramEntropy(decodeShard(train[0].bytes).tokens)
  assert.ok(h > 2.5 && h < 3.5, `unigram entropy ${h}`)
})
