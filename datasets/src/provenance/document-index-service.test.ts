import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { gunzipSync, gzipSync } from 'node:zlib'
import { DatasetError } from '../dataset-error.ts'
import type { DocumentIndex } from '../ingest/document-index.ts'
import type { CheckpointProvenance } from './checkpoint-provenance.ts'
import { DocumentIndexService } from './document-index-service.ts'

const SHARDS = [{ sha256: 'a'.repeat(64), tokens: 1000 }, { sha256: 'b'.repeat(64), tokens: 500 }]

function indexOf (documents: DocumentIndex['documents']): DocumentIndex {
  return { format: 'barnraise-documents-v1', source: 'books.tar', tokenizer: 'gpt2-1k', shards: SHARDS, documents, heldOut: ['held.txt: line 1'] }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const bytesOf = (index: unknown): Uint8Array => Buffer.from(JSON.stringify(index))
const expectFor = (bytes: Uint8Array): { url: string, sha256: string, tokenizer: string, shards: typeof SHARDS } => ({ url: 'https://data.example/documents.json', sha256: sha(bytes), tokenizer: 'gpt2-1k', shards: SHARDS })

test('the worker checks an index against its manifest and hands back its stored form; each lie is refused with ERR_BAD_INDEX and the reason', async () => {
  const service = new DocumentIndexService()
  try {
    const good = bytesOf(indexOf([['a.txt: line 1', 0, 600], ['a.txt: line 2', 600, 1200], ['b.txt: line 1', 1200, 1500]]))
    const checked = await service.check(good, expectFor(good))
    assert.equal(checked.source, 'books.tar')
    assert.equal(checked.documents, 3)
    assert.deepEqual(gunzipSync(checked.gzipped), Buffer.from(good))

    const refusals: Array<[Uint8Array, Partial<ReturnType<typeof expectFor>>, RegExp]> = [
      [good, { sha256: sha(Buffer.from('other')) }, /does not have the sha256 the manifest gives/],
      [Buffer.from('{"format": '), {}, /is not JSON/],
      [bytesOf({ ...indexOf([]), format: 'v0' }), {}, /is not a barnraise-documents-v1 index: format/],
      [bytesOf(indexOf([['a', 0, 10], ['b', 10, -1]] as unknown as DocumentIndex['documents'])), {}, /is not a barnraise-documents-v1 index: documents\.1: expected \[locator, start, end\]/],
      [bytesOf({ ...indexOf([]), documents: {} }), {}, /documents: expected an array/],
      [good, { tokenizer: 'byte' }, /made with tokenizer gpt2-1k, the manifest names byte/],
      [good, { shards: [...SHARDS].reverse() }, /describes other train shards/],
      [bytesOf(indexOf([['x', 600, 1200], ['y', 0, 600]])), {}, /out of order or out of range at "y" \[0, 600\)/],
      [bytesOf(indexOf([['x', 0, 1501]])), {}, /within the 1500 train tokens/]
    ]
    for (const [bytes, change, reason] of refusals) {
      const err = await service.check(bytes, { ...expectFor(bytes), ...change }).then(() => undefined, (e: unknown) => e)
      assert.ok(err instanceof DatasetError && err.code === 'ERR_BAD_INDEX', String(err))
      assert.match(err.message, reason)
    }
  } finally {
    await service.close()
  }
})

test('a trace reads the stored index once and keeps it; it answers with finished documents.json and .csv bodies: the documents each unit trained, in stream order', async () => {
  const service = new DocumentIndexService()
  try {
    const gz = gzipSync(bytesOf(indexOf([['a.txt: line 1', 0, 600], ['a.txt: line 2', 600, 1000], ['b.txt: line 1', 1000, 1500]])))
    let loads = 0
    const load = async (): Promise<Uint8Array> => { loads++; return gz }
    const units = [
      { round: 2, node: 'peer-b', ranges: [{ shard: 'b'.repeat(64), start: 0, end: 100 }] },
      { round: 1, node: 'peer-a', ranges: [{ shard: 'a'.repeat(64), start: 500, end: 700 }] }
    ]
    const meta = { runId: 'run-1', round: 2, dataset: 'books' }
    const first = await service.trace(sha(gz), load, meta, units)
    const json = JSON.parse(Buffer.from(first.json).toString('utf8')) as CheckpointProvenance
    assert.deepEqual({ ...json, units: undefined, documents: undefined }, { runId: 'run-1', round: 2, dataset: 'books', source: 'books.tar', tokenizer: 'gpt2-1k', heldOut: ['held.txt: line 1'], units: undefined, documents: undefined })
    assert.deepEqual(json.units, units)
    assert.deepEqual(json.documents, [
      { locator: 'a.txt: line 1', tokens: 600, trainedTokens: 100, rounds: [1], nodes: ['peer-a'] },
      { locator: 'a.txt: line 2', tokens: 400, trainedTokens: 100, rounds: [1], nodes: ['peer-a'] },
      { locator: 'b.txt: line 1', tokens: 500, trainedTokens: 100, rounds: [2], nodes: ['peer-b'] }
    ])
    assert.equal(Buffer.from(first.csv).toString('utf8'), 'source,locator,tokens,trained_tokens,rounds,nodes\nbooks.tar,a.txt: line 1,600,100,1,peer-a\nbooks.tar,a.txt: line 2,400,100,1,peer-a\nbooks.tar,b.txt: line 1,500,100,2,peer-b\n')
    assert.deepEqual({ ...first.summary, firstRounds: [...first.summary.firstRounds] }, { source: 'books.tar', heldOut: 1, firstRounds: [1, 1, 2] })
    const second = await service.trace(sha(gz), load, { ...meta, round: 1 }, units.slice(0, 1))
    assert.deepEqual((JSON.parse(Buffer.from(second.json).toString('utf8')) as CheckpointProvenance).documents.map((d) => d.locator), ['b.txt: line 1'])
    assert.equal(loads, 1, 'the worker held the parsed index for the second trace')
  } finally {
    await service.close()
  }
})

test('a worker that stops mid-request fails only that request, with ERR_INDEX_WORKER; the next request gets a fresh worker', async () => {
  const service = new DocumentIndexService()
  try {
    const documents: DocumentIndex['documents'] = []
    for (let i = 0; i < 300_000; i++) documents.push([`big.txt: line ${i + 1}`, i, i + 1])
    const shards = [{ sha256: 'c'.repeat(64), tokens: 300_000 }]
    const big = bytesOf({ ...indexOf(documents), shards })
    const pending = service.check(big, { ...expectFor(big), shards })
    // The worker goes away while it parses (as a crash would take it).
    await service.close()
    const err = await pending.then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof DatasetError && err.code === 'ERR_INDEX_WORKER', String(err))
    assert.match(err.message, /the document index worker stopped/)
    const small = bytesOf(indexOf([['a.txt: line 1', 0, 10]]))
    assert.equal((await service.check(small, expectFor(small))).documents, 1)
  } finally {
    await service.close()
  }
})
