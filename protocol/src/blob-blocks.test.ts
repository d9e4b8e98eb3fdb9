import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { BLOB_BLOCK_BYTES, blockCount, blockDigests, blocksInRanges, decodeBitfield, encodeBitfield, peerBlockResponseSchema, toBlockRanges } from './blob-blocks.ts'

test('bitfields round-trip for any set of held blocks, and a short one reads as missing', () => {
  fc.assert(fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 8192 }), (held) => {
    const present = Uint8Array.from(held, (h) => h ? 1 : 0)
    const encoded = encodeBitfield(present)
    assert.deepEqual(decodeBitfield(encoded, present.length), present)
    // The largest bitfield still fits the response schema.
    assert.ok(peerBlockResponseSchema.safeParse({ ok: true, have: encoded }).success)
  }))
  assert.deepEqual(decodeBitfield(encodeBitfield(Uint8Array.of(1, 1)), 10), Uint8Array.of(1, 1, 0, 0, 0, 0, 0, 0, 0, 0))
  // A peer's bitfield only says whom to ask: garbage still decodes to one 0 or 1 a block.
  const garbage = decodeBitfield('not base64!', 3)
  assert.equal(garbage.length, 3)
  assert.ok(garbage.every((b) => b === 0 || b === 1))
})

test('blocks: an exact multiple, a short last block, and the one empty block of an empty blob', () => {
  assert.equal(blockCount(0), 1)
  assert.equal(blockCount(BLOB_BLOCK_BYTES), 1)
  assert.equal(blockCount(BLOB_BLOCK_BYTES + 1), 2)
  const bytes = new Uint8Array(BLOB_BLOCK_BYTES + 10).map((_, i) => i % 251)
  const digests = blockDigests(bytes)
  assert.equal(digests.byteLength, 64)
  assert.deepEqual(Buffer.from(digests.subarray(32)), createHash('sha256').update(bytes.subarray(BLOB_BLOCK_BYTES)).digest())
  assert.deepEqual(Buffer.from(blockDigests(new Uint8Array(0))), createHash('sha256').update(new Uint8Array(0)).digest())
})

test('block lists become ranges and back', () => {
  assert.deepEqual(toBlockRanges([0, 1, 2, 5, 7, 8]), [{ from: 0, to: 3 }, { from: 5, to: 6 }, { from: 7, to: 9 }])
  assert.deepEqual(toBlockRanges([]), [])
  assert.deepEqual(blocksInRanges([{ from: 0, to: 3 }, { from: 7, to: 12 }], 9), [0, 1, 2, 7, 8])
})
