import { test } from 'vitest'
import assert from 'node:assert/strict'
import { BYTE_VOCAB_SIZE, decodeBytes, encodeBytes, encodeBytesInt32, TokenizerError } from './byte-tokenizer.ts'

test('token ids are the UTF-8 bytes and decode back', () => {
  assert.equal(BYTE_VOCAB_SIZE, 256)
  assert.deepEqual([...encodeBytes('Aé€')], [0x41, 0xc3, 0xa9, 0xe2, 0x82, 0xac])
  assert.deepEqual([...encodeBytesInt32('hi')], [104, 105])
  const text = 'In the beginning 🌱 — ünïcödé\n'
  assert.equal(decodeBytes(encodeBytes(text)), text)
  assert.equal(decodeBytes(encodeBytesInt32(text)), text)
})

test('invalid UTF-8 decodes to replacement characters; out-of-vocabulary ids are refused', () => {
  assert.equal(decodeBytes([0x41, 0xff, 0x42]), 'A\uFFFDB')
  assert.throws(() => decodeBytes([65, 256]), TokenizerError)
  assert.throws(() => decodeBytes([-1]), TokenizerError)
  assert.throws(() => decodeBytes([1.5]), TokenizerError)
})
