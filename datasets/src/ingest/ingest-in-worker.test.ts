import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { catalogTokenizer, uploadedTokenizer } from '../tokenizers/catalog.ts'
import { ingestInWorker } from './ingest-in-worker.ts'
import type { IngestJob } from './ingest-job.ts'

const row = (i: number): string => `Document ${i}: the lazy dog counted ${i * 7} sheep.`

describe('a tokenizing worker that never finishes a document', () => {
  it('is stopped with ERR_BAD_FILE instead of holding the one-at-a-time queue for ever (a tokenizer.json whose Split regex backtracks exponentially)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-stall-'))
    // GPT-2's first 1k tokens, pre-tokenized by a pattern that loads and splits ordinary text
    // but backtracks 2^n times on n letters that do not end the line.
    const json = { ...catalogTokenizer('gpt2-1k').huggingFaceFiles(64).get('tokenizer.json')!, pre_tokenizer: { type: 'Split', pattern: { Regex: '(\\w+)+$' }, behavior: 'Isolated', invert: false } }
    const bytes = new TextEncoder().encode(JSON.stringify(json))
    expect(Array.from(uploadedTokenizer(bytes).encode('short line!')).length).toBeGreaterThan(0)
    await writeFile(join(dir, 'tokenizer.json'), bytes)
    const lines = Array.from({ length: 60 }, (_, i) => JSON.stringify({ text: row(i) }))
    const job = (file: string): IngestJob => ({ path: join(dir, file), format: 'jsonl', field: 'text', source: file, tokenizer: { file: join(dir, 'tokenizer.json') }, outDir: dir, shardTokens: 2000, holdOutEvery: 50, maxValidationTokens: 100_000, budget: null })
    // The same tokenizer finishes an honest file: a stall is what stops the other.
    await writeFile(join(dir, 'fine.jsonl'), lines.join('\n'))
    // A wide margin here: the worker's heartbeat starts only once its modules load, slow on a busy machine.
    expect((await ingestInWorker(job('fine.jsonl'), () => {}, undefined, { stallMs: 60_000 })).documents).toBe(60)
    lines.splice(10, 0, JSON.stringify({ text: `${'a'.repeat(64)}!` }))
    await writeFile(join(dir, 'stuck.jsonl'), lines.join('\n'))
    await expect(ingestInWorker(job('stuck.jsonl'), () => {}, undefined, { stallMs: 10_000 })).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^tokenizing was stopped: it spent more than 10 s on one step/) })
  })
})
