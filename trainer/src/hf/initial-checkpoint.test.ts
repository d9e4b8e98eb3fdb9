// The round-0 checkpoint streamed a slice at a time must be byte for byte the one made whole from
// initParams: agents make it from the seed and use it only if its sha256 is the coordinator's.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { parseLlamaConfig } from '@barnraise/protocol'
import type { LlamaConfig } from '@barnraise/protocol'
import { initParams, paramSpecs } from '../model/params.ts'
import { presetConfig } from '../model/presets.ts'
import { sha256Hex } from '../data/shard.ts'
import { storedCheckpointBytes } from './checkpoint-files.ts'
import { initialCheckpoint, initialCheckpointChunks, initialCheckpointHeader } from './initial-checkpoint.ts'
import { initialWeightWriter } from './initial-weights.ts'

/** Untied, so lm_head is there too: 2 layers, 11 matrices and 5 norm gains. */
const config: LlamaConfig = { ...presetConfig('tiny'), tie_word_embeddings: false }
const SEED = 1234

/** What initialCheckpoint made before it was streamed: initParams's model, serialised whole. */
const reference = storedCheckpointBytes(config, initParams(config, SEED).flat)

/** The stream's chunks, each copied (a chunk is lent until the next is asked for), and its sha256. */
async function drain (chunks: AsyncIterable<Uint8Array>): Promise<{ sizes: number[], bytes: Uint8Array, sha256: string }> {
  const hash = createHash('sha256')
  const copies: Uint8Array[] = []
  for await (const chunk of chunks) {
    hash.update(chunk)
    copies.push(chunk.slice())
  }
  return { sizes: copies.map((c) => c.byteLength), bytes: Buffer.concat(copies), sha256: hash.digest('hex') }
}

test('the weight writer gives initParams\'s values however the ranges fall (inside a tensor, across several)', () => {
  const whole = initParams(config, SEED).flat
  const writer = initialWeightWriter(config, SEED)
  assert.equal(writer.total, whole.length)
  const made = new Float32Array(whole.length)
  // Odd lengths split the normal generator's pairs; 20000 spans the embedding's end and several tensors.
  let at = 0
  for (const n of [1, 7, 0, 999, 20_000, 3]) { writer.write(made.subarray(at, at + n)); at += n }
  writer.write(made.subarray(at))
  assert.ok(Buffer.from(made.buffer).equals(Buffer.from(whole.buffer)))
  assert.throws(() => { writer.write(new Float32Array(1)) }, { code: 'ERR_BAD_PARAMS' })
})

test('the streamed checkpoint, cut into slices smaller than a tensor, has the whole one\'s bytes and sha256', async () => {
  const sliceValues = 5000
  const streamed = await drain(initialCheckpointChunks(config, SEED, { sliceValues }))
  assert.equal(streamed.sha256, sha256Hex(reference))
  assert.ok(Buffer.from(streamed.bytes).equals(reference))
  // The header, then full slices and one shorter last: the 16384-value embedding alone takes four.
  const { header, dataBytes } = initialCheckpointHeader(config)
  const slices = Math.ceil(dataBytes / (4 * sliceValues))
  assert.ok(paramSpecs(config)[0]!.shape[0]! * paramSpecs(config)[0]!.shape[1]! > 3 * sliceValues)
  assert.deepEqual(streamed.sizes, [header.byteLength, ...Array.from({ length: slices }, (_, i) => i < slices - 1 ? 4 * sliceValues : dataBytes - 4 * sliceValues * (slices - 1))])
})

test('initialCheckpoint (whole, for agents) reads the same stream: same bytes and sha256, one slice or many', async () => {
  const whole = await initialCheckpoint(config, SEED)
  assert.equal(whole.sha256, sha256Hex(reference))
  assert.ok(Buffer.from(whole.bytes).equals(reference))
  // A config.json model (another shape): the default slice holds it whole.
  const other = parseLlamaConfig({ vocab_size: 300, hidden_size: 48, intermediate_size: 100, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true })
  assert.equal((await initialCheckpoint(other, 7)).sha256, sha256Hex(storedCheckpointBytes(other, initParams(other, 7).flat)))
})

test('an abort mid-stream throws the signal\'s reason; a consumer that stops early ends the worker', async () => {
  const controller = new AbortController()
  const chunks = initialCheckpointChunks(config, SEED, { sliceValues: 1000, signal: controller.signal })
  let seen = 0
  await assert.rejects((async () => {
    for await (const chunk of chunks) {
      void chunk
      if (++seen === 3) controller.abort(new Error('stopped by the test'))
    }
  })(), /stopped by the test/)
  assert.equal(seen, 3)

  // Leaving after the header: return() settles once the worker is terminated, not left running.
  const early = initialCheckpointChunks(config, SEED, { sliceValues: 1000 })
  assert.equal((await early.next()).done, false)
  assert.deepEqual(await early.return(undefined), { done: true, value: undefined })
  // An aborted signal or a bad seed refuses before any worker starts.
  await assert.rejects(initialCheckpoint(config, SEED, AbortSignal.abort()), { name: 'AbortError' })
  await assert.rejects(initialCheckpoint(config, 1.5), { code: 'ERR_BAD_PARAMS' })
})
