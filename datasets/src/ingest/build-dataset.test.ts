import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { gunzipSync } from 'node:zlib'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parquetWriteFile } from 'hyparquet-writer'
import { decodeShard } from '@barnraise/trainer'
import type { ShardManifest } from '@barnraise/protocol'
import { describe, expect, it } from 'vitest'
import { catalogTokenizer } from '../tokenizers/catalog.ts'
import { openReader } from '../readers/open-reader.ts'
import { fileLines } from '../readers/line-splitter.ts'
import { wholeFile } from '../readers/file-span.ts'
import { buildDataset } from './build-dataset.ts'
import type { BuildResult } from './build-dataset.ts'
import { documentsInRanges } from './document-index.ts'
import { ingestInWorker } from './ingest-in-worker.ts'
import type { DatasetFormat } from '../readers/source-document.ts'

const row = (i: number): string => `Document ${i}: the ${i % 3 === 0 ? 'quick brown fox' : 'lazy dog'} counted ${i * 7} sheep, and it's fine.`

async function build (path: string, format: DatasetFormat, field: string | null, shardTokens = 500): Promise<{ result: BuildResult, shards: Map<string, Uint8Array> }> {
  const shards = new Map<string, Uint8Array>()
  const result = await buildDataset({
    reader: await openReader(path, format, field),
    tokenizer: catalogTokenizer('gpt2-1k'),
    source: 'test-file',
    shardTokens,
    holdOutEvery: 50,
    maxValidationTokens: 1_000_000,
    onShard: async (bytes, m: ShardManifest) => { shards.set(m.sha256, bytes) }
  })
  return { result, shards }
}

/** The text of every indexed document, read back from the shards through the index. */
function indexedTexts (result: BuildResult, shards: Map<string, Uint8Array>): string[] {
  const stream: number[] = []
  for (const s of result.index.shards) stream.push(...decodeShard(shards.get(s.sha256)!).tokens)
  const tok = catalogTokenizer('gpt2-1k')
  return result.index.documents.map(([, start, end]) => tok.decode(stream.slice(start, end)))
}

describe('building a dataset', () => {
  it('JSONL: documents from the named field, bad rows counted with reasons, every 50th held out, the index points at each text', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-'))
    const lines: string[] = []
    for (let i = 1; i <= 210; i++) lines.push(JSON.stringify({ id: i, text: row(i) }))
    lines.splice(10, 0, '{not json', JSON.stringify({ body: 'x' }), JSON.stringify({ text: 5 }), JSON.stringify({ text: '  ' }), '[1,2]', '')
    await writeFile(join(dir, 'a.jsonl'), lines.join('\r\n') + '\n')
    const { result, shards } = await build(join(dir, 'a.jsonl'), 'jsonl', 'text')
    expect(result.documents).toBe(210)
    expect(result.badRows).toBe(5)
    expect(result.badRowExamples.map((e) => e.reason)).toEqual([expect.stringMatching(/^not JSON/), 'no "text" field', '"text" is not a string', '"text" is empty', 'the line is not a JSON object'])
    expect(result.badRowExamples[0]!.locator).toBe('line 11')
    expect(result.index.heldOut).toHaveLength(4)
    expect(result.index.documents).toHaveLength(206)
    expect(result.train.length).toBeGreaterThan(3)
    const expected = Array.from({ length: 210 }, (_, k) => row(k + 1)).filter((_, k) => (k + 1) % 50 !== 0)
    expect(indexedTexts(result, shards)).toEqual(expected)
    // The separator between documents is <|endoftext|>.
    const first = decodeShard(shards.get(result.train[0]!.sha256)!).tokens
    expect(first[result.index.documents[0]![2]]).toBe(1024)
    expect(result.trainTokens).toBe(result.train.reduce((n, s) => n + s.tokens, 0))
    expect(decodeShard(shards.get(result.validation.sha256)!).vocabSize).toBe(1025)
  })

  it('Parquet: read row group by row group; null and non-string values are bad rows', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-'))
    const texts: Array<string | null> = Array.from({ length: 160 }, (_, i) => i === 7 ? null : row(i))
    parquetWriteFile({ filename: join(dir, 'a.parquet'), columnData: [{ name: 'id', data: texts.map((_, i) => i), type: 'INT32' }, { name: 'content', data: texts, type: 'STRING' }], rowGroupSize: 40 })
    const { result, shards } = await build(join(dir, 'a.parquet'), 'parquet', 'content')
    expect(result.badRows).toBe(1)
    expect(result.badRowExamples[0]).toEqual({ locator: 'row 7', reason: '"content" is null' })
    expect(result.documents).toBe(159)
    expect(result.index.documents[0]![0]).toBe('row 0')
    expect(indexedTexts(result, shards)[10]).toBe(row(11))
    await expect(openReader(join(dir, 'a.parquet'), 'parquet', 'text')).rejects.toThrow(/no column "text"; its columns are id, content/)
    await writeFile(join(dir, 'junk.parquet'), 'PAR1 this is not parquet')
    await expect(openReader(join(dir, 'junk.parquet'), 'parquet', 'content')).rejects.toThrow(/not a Parquet file/)
  })

  it('plain text: paragraphs are documents located by line; invalid UTF-8 lines are bad rows', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-'))
    const paragraphs = Array.from({ length: 120 }, (_, i) => `${row(i)}\nsecond line of ${i}`)
    const bytes = Buffer.concat([Buffer.from(paragraphs.slice(0, 60).join('\n\n') + '\n\n'), Buffer.from([0xc3, 0x28, 0x0a, 0x0a]), Buffer.from(paragraphs.slice(60).join('\n\n\n'))])
    await writeFile(join(dir, 'a.txt'), bytes)
    const { result, shards } = await build(join(dir, 'a.txt'), 'text', null)
    expect(result.badRows).toBe(1)
    expect(result.badRowExamples[0]!.reason).toMatch(/UTF-8/)
    expect(result.documents).toBe(120)
    expect(result.index.documents[0]![0]).toBe('lines 1-2')
    expect(indexedTexts(result, shards)[0]).toBe(paragraphs[0])
  })

  it('refuses a file with too few documents to hold one out', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-'))
    await writeFile(join(dir, 'a.jsonl'), [1, 2, 3].map((i) => JSON.stringify({ text: row(i) })).join('\n'))
    await expect(build(join(dir, 'a.jsonl'), 'jsonl', 'text')).rejects.toMatchObject({ code: 'ERR_TOO_FEW_DOCUMENTS' })
    await expect(openReader(join(dir, 'a.jsonl'), 'jsonl', null)).rejects.toMatchObject({ code: 'ERR_BAD_OPTIONS' })
  })

  it('lines longer than the limit are skipped without being held', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-'))
    await writeFile(join(dir, 'a.txt'), `short\n${'x'.repeat(5000)}\nafter`)
    const lines = []
    for await (const l of fileLines(await wholeFile(join(dir, 'a.txt')), () => {}, 1000)) lines.push(l.tooLong ? 'TOO LONG' : Buffer.from(l.bytes).toString())
    expect(lines).toEqual(['short', 'TOO LONG', 'after'])
  })
})

describe('documentsInRanges', () => {
  const index = { format: 'barnraise-documents-v1' as const, source: 's', tokenizer: 'gpt2', heldOut: [], shards: [{ sha256: 'a'.repeat(64), tokens: 100 }, { sha256: 'b'.repeat(64), tokens: 50 }], documents: [['d0', 0, 40], ['d1', 41, 99], ['d2', 100, 120], ['d3', 121, 149]] as Array<[string, number, number]> }

  it('names each document a set of shard ranges touches, once, with the tokens trained', () => {
    const docs = documentsInRanges(index, [{ shard: 'b'.repeat(64), start: 0, end: 10 }, { shard: 'a'.repeat(64), start: 30, end: 50 }, { shard: 'a'.repeat(64), start: 50, end: 60 }, { shard: 'c'.repeat(64), start: 0, end: 5 }])
    expect(docs).toEqual([{ locator: 'd0', tokens: 40, trained: 10 }, { locator: 'd1', tokens: 58, trained: 19 }, { locator: 'd2', tokens: 20, trained: 10 }])
    expect(documentsInRanges(index, [])).toEqual([])
  })
})

describe('ingestInWorker', () => {
  it('tokenizes on a worker thread, reports progress and leaves shard files named by sha256', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-'))
    await writeFile(join(dir, 'a.jsonl'), Array.from({ length: 300 }, (_, i) => JSON.stringify({ t: row(i) })).join('\n'))
    const seen: number[] = []
    const result = await ingestInWorker({ path: join(dir, 'a.jsonl'), format: 'jsonl', field: 't', source: 'a.jsonl', tokenizer: { catalog: 'gpt2-1k' }, outDir: dir, shardTokens: 2000, holdOutEvery: 50, maxValidationTokens: 100_000, budget: null }, (p) => seen.push(p.bytesRead))
    expect(result.documents).toBe(300)
    expect(seen.at(-1)).toBe(result.bytesTotal)
    for (const s of [...result.train, result.validation]) expect(decodeShard(await readFile(join(dir, s.sha256))).tokens.length).toBe(s.tokens)
    // The index is left gzipped beside the shards, made on the worker.
    const index = JSON.parse(gunzipSync(await readFile(result.indexFile)).toString('utf8')) as { documents: unknown[] }
    expect(index.documents).toHaveLength(result.indexDocuments)
    expect(result.indexDocuments).toBe(300 - 300 / 50)
    const stop = new AbortController()
    const stopped = ingestInWorker({ path: join(dir, 'a.jsonl'), format: 'jsonl', field: 't', source: 'a.jsonl', tokenizer: { catalog: 'gpt2-1k' }, outDir: dir, shardTokens: 2000, holdOutEvery: 50, maxValidationTokens: 100_000, budget: null }, () => {}, stop.signal)
    stop.abort(new Error('stopping'))
    await expect(stopped).rejects.toThrow('stopping')
    await expect(ingestInWorker({ path: join(dir, 'a.jsonl'), format: 'jsonl', field: 'missing', source: 'a.jsonl', tokenizer: { catalog: 'gpt2-1k' }, outDir: dir, shardTokens: 2000, holdOutEvery: 50, maxValidationTokens: 100_000, budget: null }, () => {})).rejects.toThrow(/no document to train on \(300 bad rows; first: line 1: no "missing" field\)/)
  })
})
