import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { UPLOADS_STORAGE_KEY, fileKey, forgetUpload, recallUpload, rememberUpload, resumeChoice } from './upload-resume.ts'
import type { DatasetState, KeyValueStore } from './upload-resume.ts'

function memoryStore (): KeyValueStore & { items: Map<string, string> } {
  const items = new Map<string, string>()
  return { items, getItem: (k) => items.get(k) ?? null, setItem: (k, v) => { items.set(k, v) } }
}

const ID = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`
const file = { name: 'kjv.jsonl', size: 4_321_000, lastModified: 1_760_000_000_000 }

describe('remembering dataset uploads across reloads', () => {
  test('a file is known by name, size and modification time', () => {
    const store = memoryStore()
    rememberUpload(store, fileKey(file), ID(1))
    assert.equal(recallUpload(store, fileKey(file)), ID(1))
    assert.equal(recallUpload(store, fileKey({ ...file, lastModified: file.lastModified + 1 })), null, 'an edited file is another file')
    assert.equal(recallUpload(store, fileKey({ ...file, size: file.size + 1 })), null)
    assert.equal(recallUpload(store, fileKey({ ...file, name: 'other.jsonl' })), null)
    rememberUpload(store, fileKey(file), ID(2))
    assert.equal(recallUpload(store, fileKey(file)), ID(2), 'a new upload of the file replaces the old one')
    forgetUpload(store, fileKey(file))
    assert.equal(recallUpload(store, fileKey(file)), null)
  })

  test('only the newest 20 are kept, and damaged storage is read as empty', () => {
    const store = memoryStore()
    for (let i = 0; i < 25; i++) rememberUpload(store, fileKey({ ...file, name: `f${i}` }), ID(i), 1000 + i)
    assert.equal(Object.keys(JSON.parse(store.items.get(UPLOADS_STORAGE_KEY)!) as object).length, 20)
    assert.equal(recallUpload(store, fileKey({ ...file, name: 'f4' })), null, 'the oldest went first')
    assert.equal(recallUpload(store, fileKey({ ...file, name: 'f24' })), ID(24))
    store.items.set(UPLOADS_STORAGE_KEY, '{not json')
    assert.equal(recallUpload(store, fileKey(file)), null)
    store.items.set(UPLOADS_STORAGE_KEY, JSON.stringify({ [fileKey(file)]: { id: 'javascript:alert(1)', savedAt: 1 } }))
    assert.equal(recallUpload(store, fileKey(file)), null, 'an entry that is not a dataset id is ignored')
    rememberUpload(store, fileKey(file), ID(7))
    assert.equal(recallUpload(store, fileKey(file)), ID(7), 'writing replaces what could not be read')
  })

  test('a store that refuses writes loses the memory, not the upload', () => {
    const store: KeyValueStore = { getItem: () => null, setItem: () => { throw new Error('QuotaExceededError') } }
    assert.doesNotThrow(() => { rememberUpload(store, fileKey(file), ID(1)) })
  })
})

describe('what a new attempt does with the earlier dataset', () => {
  const earlier: DatasetState = { status: 'uploading', fileName: 'kjv.jsonl', fileBytes: 4_321_000, receivedBytes: 16_777_216, format: 'jsonl', field: 'text', tokenizer: 'gpt2-1k' }
  const wanted = { fileName: 'kjv.jsonl', fileBytes: 4_321_000, format: 'jsonl', field: ' text ', tokenizer: 'gpt2-1k' }

  test('an unfinished upload announced the same way resumes from the bytes the server holds', () => {
    assert.deepEqual(resumeChoice(earlier, wanted), { kind: 'resume', from: 16_777_216 })
  })

  test('an upload already in, tokenizing or ready, is followed rather than sent again', () => {
    assert.deepEqual(resumeChoice({ ...earlier, status: 'tokenizing' }, wanted), { kind: 'follow' })
    assert.deepEqual(resumeChoice({ ...earlier, status: 'ready' }, wanted), { kind: 'follow' })
  })

  test('no earlier dataset, a failed one, or one announced differently starts anew', () => {
    assert.deepEqual(resumeChoice(null, wanted), { kind: 'new' })
    assert.deepEqual(resumeChoice({ ...earlier, status: 'failed' }, wanted), { kind: 'new' })
    assert.deepEqual(resumeChoice(earlier, { ...wanted, tokenizer: 'gpt2' }), { kind: 'new' })
    assert.deepEqual(resumeChoice(earlier, { ...wanted, field: 'body' }), { kind: 'new' })
    assert.deepEqual(resumeChoice(earlier, { ...wanted, format: 'parquet' }), { kind: 'new' })
    assert.deepEqual(resumeChoice(earlier, { ...wanted, fileBytes: 4_321_001 }), { kind: 'new' })
    // Plain text has no field: whatever the form still holds for it does not matter.
    assert.deepEqual(resumeChoice({ ...earlier, format: 'text', field: null }, { ...wanted, format: 'text', field: 'text' }), { kind: 'resume', from: 16_777_216 })
  })
})
