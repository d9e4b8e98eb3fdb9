import { test } from 'vitest'
import assert from 'node:assert/strict'
import { shardManifestSchema } from '@barnraise/protocol'
import { buildShards, buildShardsFromTokens, checkShardTokens, decodeShard, encodeShard, readShardHeader, SHARD_HEADER_BYTES, ShardError, sha256Hex } from './shard.ts'

const isCode = (code: string) => (err: unknown) => err instanceof ShardError && err.code === code

test('byte shards round-trip with a 32-byte header and one byte per token', () => {
  const tokens = new Uint8Array([0, 1, 255, 65, 10])
  const bytes = encodeShard(tokens, 256)
  assert.equal(bytes.byteLength, SHARD_HEADER_BYTES + 5)
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), 'BRSHARD1')
  const back = decodeShard(bytes)
  assert.equal(back.vocabSize, 256)
  assert.ok(back.tokens instanceof Uint8Array)
  assert.deepEqual([...back.tokens], [...tokens])
})

test('wider vocabularies use 2 or 4 bytes per token and decode to Int32Array', () => {
  for (const [vocab, width] of [[1000, 2], [65536, 2], [100_000, 4]] as const) {
    const tokens = [0, 1, vocab - 1, 7]
    const bytes = encodeShard(tokens, vocab)
    assert.equal(bytes.byteLength, SHARD_HEADER_BYTES + tokens.length * width)
    const back = decodeShard(bytes)
    assert.ok(back.tokens instanceof Int32Array)
    assert.deepEqual([...back.tokens], tokens)
  }
  assert.throws(() => encodeShard([1000], 1000), isCode('ERR_BAD_TOKEN'))
  assert.throws(() => encodeShard([-1], 256), isCode('ERR_BAD_TOKEN'))
})

test('truncated, padded, foreign and inconsistent shards are refused', () => {
  const good = encodeShard([1, 2, 3, 4], 1000)
  for (let n = 0; n < good.length; n++) assert.throws(() => decodeShard(good.subarray(0, n)), ShardError, `length ${n}`)
  assert.throws(() => decodeShard(good.subarray(0, 10)), isCode('ERR_TRUNCATED'))
  assert.throws(() => decodeShard(good.subarray(0, good.length - 1)), isCode('ERR_TRUNCATED'))
  const padded = new Uint8Array(good.length + 2)
  padded.set(good)
  assert.throws(() => decodeShard(padded), isCode('ERR_TRUNCATED'))
  const magic = good.slice(); magic[0] = 0x58
  assert.throws(() => decodeShard(magic), isCode('ERR_BAD_MAGIC'))
  const version = good.slice(); new DataView(version.buffer).setUint32(8, 2, true)
  assert.throws(() => decodeShard(version), isCode('ERR_BAD_VERSION'))
  const width = good.slice(); new DataView(width.buffer).setUint32(12, 1, true)
  assert.throws(() => decodeShard(width), isCode('ERR_BAD_HEADER'))
  const vocab = good.slice(); new DataView(vocab.buffer).setUint32(16, 3, true)
  assert.throws(() => decodeShard(vocab), isCode('ERR_BAD_HEADER'))
  const token = encodeShard([1, 2], 100); token[SHARD_HEADER_BYTES] = 200
  assert.throws(() => decodeShard(token), isCode('ERR_BAD_TOKEN'))
  const huge = good.slice(); new DataView(huge.buffer).setBigUint64(24, 2n ** 63n, true)
  assert.throws(() => decodeShard(huge), isCode('ERR_TRUNCATED'))
})

test('a shard checked in place, in slices, finds the same bad token decodeShard does, at any width', () => {
  for (const [vocab, width] of [[100, 1], [1000, 2], [100_000, 4]] as const) {
    const tokens = Array.from({ length: 50 }, (_, i) => i % vocab)
    const good = encodeShard(tokens, vocab)
    const header = readShardHeader(good)
    assert.deepEqual(header, { vocabSize: vocab, width, tokens: 50 })
    checkShardTokens(good, header, 0, 20)
    checkShardTokens(good, header, 20)
    const bad = good.slice()
    const at = SHARD_HEADER_BYTES + 37 * width
    if (width === 4) new DataView(bad.buffer).setUint32(at, 0xffffffff, true)
    else bad[at + width - 1] = 0xff
    assert.throws(() => decodeShard(bad), /token 37 is/)
    checkShardTokens(bad, header, 0, 37)
    assert.throws(() => checkShardTokens(bad, header, 30, 40), (err: unknown) => isCode('ERR_BAD_TOKEN')(err) && /token 37 is/.test((err as Error).message))
  }
  assert.throws(() => readShardHeader(encodeShard([1], 1000).subarray(0, 33)), isCode('ERR_TRUNCATED'))
})

test('buildShards holds out the last fraction as validation and names shards by content', () => {
  const text = 'abcdefghij'.repeat(100) // 1000 tokens
  const { train, validation } = buildShards(text, { shardTokens: 300, validationFraction: 0.02 })
  assert.deepEqual(train.map((s) => s.manifest.tokens), [300, 300, 300, 80])
  assert.equal(validation.manifest.tokens, 20)
  assert.deepEqual([...decodeShard(validation.bytes).tokens], [...new TextEncoder().encode(text.slice(980))])
  const all = [...train, validation]
  const joined = all.flatMap((s) => [...decodeShard(s.bytes).tokens])
  assert.deepEqual(joined, [...new TextEncoder().encode(text)])
  for (const s of all) {
    shardManifestSchema.parse(s.manifest)
    assert.equal(s.manifest.sha256, sha256Hex(s.bytes))
    assert.equal(s.manifest.bytes, s.bytes.byteLength)
    assert.equal(s.manifest.vocabSize, 256)
  }
  assert.equal(train[0].manifest.name, 'train-00000')
  const again = buildShards(text, { shardTokens: 300, validationFraction: 0.02 })
  assert.deepEqual(again.train.map((s) => s.manifest.sha256), train.map((s) => s.manifest.sha256))
})

test('buildShards refuses options that cannot work', () => {
  const tokens = new Uint8Array(100)
  assert.throws(() => buildShardsFromTokens(tokens, 256, { shardTokens: 0, validationFraction: 0.1 }), isCode('ERR_BAD_OPTIONS'))
  assert.throws(() => buildShardsFromTokens(tokens, 256, { shardTokens: 10, validationFraction: 0 }), isCode('ERR_BAD_OPTIONS'))
  assert.throws(() => buildShardsFromTokens(tokens, 256, { shardTokens: 10, validationFraction: 0.9 }), isCode('ERR_BAD_OPTIONS'))
  assert.throws(() => buildShardsFromTokens(tokens.subarray(0, 1), 256, { shardTokens: 10, validationFraction: 0.1 }), isCode('ERR_BAD_OPTIONS'))
  // a tiny corpus still gets at least one validation token
  assert.equal(buildShardsFromTokens(tokens.subarray(0, 3), 256, { shardTokens: 10, validationFraction: 0.01 }).validation.manifest.tokens, 1)
})
