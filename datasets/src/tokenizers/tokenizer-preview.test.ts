import { test } from 'vitest'
import assert from 'node:assert/strict'
import { catalogTokenizer } from './catalog.ts'
import { MAX_PREVIEWS, previewUploadedTokenizer } from './tokenizer-preview.ts'
import { DatasetError } from '../dataset-error.ts'

/** GPT-2's first 1k tokens, pre-tokenized by `pattern`. */
function tokenizerJson (pattern: string): Uint8Array {
  const json = { ...catalogTokenizer('gpt2-1k').huggingFaceFiles(64).get('tokenizer.json')!, pre_tokenizer: { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false } }
  return new TextEncoder().encode(JSON.stringify(json))
}

test('an uploaded tokenizer previews on a worker thread; one whose pattern backtracks without end on the sample is stopped with a reason, and the thread asking is never blocked', async () => {
  // Backtracks 2^n times on n letters that do not end the line.
  const hostile = tokenizerJson('(\\w+)+$')
  const fine = await previewUploadedTokenizer(hostile, 'short line!', 10_000)
  assert.ok(fine.ids.length > 0 && fine.pieces.length === fine.ids.length && fine.vocabSize === 1025, JSON.stringify(fine))
  let ticks = 0
  const ticker = setInterval(() => { ticks++ }, 50)
  try {
    await assert.rejects(previewUploadedTokenizer(hostile, `${'a'.repeat(64)}!`, 2_000), (err: unknown) => {
      assert.ok(err instanceof DatasetError && err.code === 'ERR_BAD_OPTIONS', String(err))
      assert.match(err.message, /took more than 2 s on 65 characters and was stopped: one of its regular expressions backtracks/)
      return true
    })
  } finally {
    clearInterval(ticker)
  }
  assert.ok(ticks > 5, `this thread kept turning meanwhile (${ticks} ticks)`)
})

test(`at most ${MAX_PREVIEWS} previews run at once; more are refused as busy`, async () => {
  const hostile = tokenizerJson('(\\w+)+$')
  const stuck = Array.from({ length: MAX_PREVIEWS }, async () => await previewUploadedTokenizer(hostile, `${'a'.repeat(64)}!`, 3_000).catch((err: unknown) => err))
  await assert.rejects(previewUploadedTokenizer(hostile, 'x', 3_000), (err: unknown) => err instanceof DatasetError && err.code === 'ERR_BUSY')
  for (const r of await Promise.all(stuck)) assert.ok(r instanceof DatasetError && r.code === 'ERR_BAD_OPTIONS')
  assert.ok((await previewUploadedTokenizer(hostile, 'free again', 10_000)).ids.length > 0, 'a slot is free once they end')
})
