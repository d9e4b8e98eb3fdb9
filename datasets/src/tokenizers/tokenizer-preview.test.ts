import { test } from 'vitest'
import assert from 'node:assert/strict'
import { catalogTokenizer } from './catalog.ts'
import { MAX_WAITING_PREVIEWS, previewUploadedTokenizer } from './tokenizer-preview.ts'
import { DatasetError } from '../dataset-error.ts'

/** GPT-2's first 1k tokens, pre-tokenized by a pattern that backtracks 2^n times on n letters that do not end the line. */
const hostile = new TextEncoder().encode(JSON.stringify({
  ...catalogTokenizer('gpt2-1k').huggingFaceFiles(64).get('tokenizer.json')!,
  pre_tokenizer: { type: 'Split', pattern: { Regex: '(\\w+)+$' }, behavior: 'Isolated', invert: false }
}))
const stuck = `${'a'.repeat(64)}!`

test('an uploaded tokenizer previews on a worker thread that keeps it parsed; one whose pattern backtracks without end on the sample is stopped with a reason, never blocking this thread', async () => {
  let reads = 0
  const bytesOf = async (): Promise<Uint8Array> => { reads++; return hostile }
  const fine = await previewUploadedTokenizer('a'.repeat(64), bytesOf, 'short line!', 60_000)
  assert.ok(fine.ids.length > 0 && fine.pieces.length === fine.ids.length && fine.vocabSize === 1025, JSON.stringify(fine))
  await previewUploadedTokenizer('a'.repeat(64), bytesOf, 'another line.', 60_000)
  assert.equal(reads, 1, 'parsed once, kept by the worker')
  let ticks = 0
  const ticker = setInterval(() => { ticks++ }, 50)
  try {
    await assert.rejects(previewUploadedTokenizer('a'.repeat(64), bytesOf, stuck, 2_000), (err: unknown) => {
      assert.ok(err instanceof DatasetError && err.code === 'ERR_BAD_OPTIONS', String(err))
      assert.match(err.message, /took more than 2 s on 65 characters and was stopped: one of its regular expressions backtracks/)
      return true
    })
  } finally {
    clearInterval(ticker)
  }
  assert.ok(ticks > 5, `this thread kept turning meanwhile (${ticks} ticks)`)
  // A fresh worker takes the next preview, parsing the tokenizer again.
  assert.ok((await previewUploadedTokenizer('a'.repeat(64), bytesOf, 'after', 60_000)).ids.length > 0)
  assert.equal(reads, 2)
})

test(`previews wait their turn, at most ${MAX_WAITING_PREVIEWS} at once; more are refused as busy`, async () => {
  const bytesOf = async (): Promise<Uint8Array> => hostile
  const queued = Array.from({ length: MAX_WAITING_PREVIEWS }, async () => await previewUploadedTokenizer('b'.repeat(64), bytesOf, stuck, 500).catch((err: unknown) => err))
  await assert.rejects(previewUploadedTokenizer('b'.repeat(64), bytesOf, 'x', 60_000), (err: unknown) => err instanceof DatasetError && err.code === 'ERR_BUSY')
  for (const r of await Promise.all(queued)) assert.ok(r instanceof DatasetError && r.code === 'ERR_BAD_OPTIONS', String(r))
  assert.ok((await previewUploadedTokenizer('b'.repeat(64), bytesOf, 'free again', 60_000)).ids.length > 0, 'the queue drains')
})
