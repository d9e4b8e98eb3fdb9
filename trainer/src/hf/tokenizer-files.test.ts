import { test } from 'vitest'
import assert from 'node:assert/strict'
import { encodeBytes } from '../data/byte-tokenizer.ts'
import { byteToUnicode, tokenizerConfigJson, tokenizerJson } from './tokenizer-files.ts'

test('byte symbols are GPT-2 bytes_to_unicode', () => {
  const s = byteToUnicode()
  assert.equal(new Set(s).size, 256)
  assert.equal(s[65], 'A')
  assert.equal(s[0x20], 'Ġ') // U+0120, the familiar space marker
  assert.equal(s[0x0a], 'Ċ')
  assert.equal(s[0x7f], 'ġ')
  assert.equal(s[0xad], 'Ń')
  assert.equal(s[0xe9], 'é')
})

test('tokenizer.json maps the symbol of byte b to id b, with no merges and no special tokens', () => {
  const json = tokenizerJson() as { model: { type: string, vocab: Record<string, number>, merges: unknown[] }, added_tokens: unknown[], pre_tokenizer: { type: string }, decoder: { type: string } }
  assert.equal(json.model.type, 'BPE')
  assert.deepEqual(json.model.merges, [])
  assert.deepEqual(json.added_tokens, [])
  assert.equal(json.pre_tokenizer.type, 'ByteLevel')
  assert.equal(json.decoder.type, 'ByteLevel')
  const symbols = byteToUnicode()
  assert.equal(Object.keys(json.model.vocab).length, 256)
  for (let b = 0; b < 256; b++) assert.equal(json.model.vocab[symbols[b]], b)
  // What a ByteLevel + merge-free BPE pipeline produces for a text: one id per UTF-8 byte.
  const text = 'In the beginning, ünïcödé 🌱\n'
  const ids = [...encodeBytes(text)].map((b) => symbols[b]).map((sym) => json.model.vocab[sym])
  assert.deepEqual(ids, [...encodeBytes(text)])
})

test('tokenizer_config.json names the fast tokenizer and the context length', () => {
  const cfg = tokenizerConfigJson(512)
  assert.equal(cfg.tokenizer_class, 'PreTrainedTokenizerFast')
  assert.equal(cfg.model_max_length, 512)
  assert.equal(cfg.add_bos_token, false)
})
