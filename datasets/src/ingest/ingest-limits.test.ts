// What one tokenizing job may take: bytes on the staging disk (its budget, the uploader's room
// under the dataset quota) and heap on its worker thread. A file that tokenizes into far more
// than itself, or into tens of millions of tiny documents, fails alone with a message that says
// why, never filling the disk or the coordinator's memory first.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp as makeTemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gunzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { catalogTokenizer } from '../tokenizers/catalog.ts'
import { openReader } from '../readers/open-reader.ts'
import { zstdParquet } from '../readers/crafted-parquet.ts'
import { buildDataset } from './build-dataset.ts'
import { DocumentIndexWriter } from './document-index-writer.ts'
import { ingestInWorker } from './ingest-in-worker.ts'
import type { IngestBudget, IngestJob } from './ingest-job.ts'
import { OutputBudget } from './output-budget.ts'

// Each test's folders go when it ends: these files and shards run to megabytes.
const made: string[] = []
async function mkdtemp (prefix: string): Promise<string> {
  const dir = await makeTemp(prefix)
  made.push(dir)
  return dir
}
afterEach(async () => {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true })
})

const BUDGET: Omit<IngestBudget, 'bytes'> = { limit: 'your share of the dataset quota (1 MiB an account, --user-dataset-quota-mb) had 1.0 MiB left', advice: 'upload a smaller part of the file, or ask the operator for room' }

async function staged (name: string, bytes: Buffer | string): Promise<{ path: string, outDir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ds-limits-'))
  await writeFile(join(dir, name), bytes)
  await mkdir(join(dir, 'out'))
  return { path: join(dir, name), outDir: join(dir, 'out') }
}

async function bytesIn (dir: string): Promise<number> {
  let n = 0
  for (const f of await readdir(dir)) n += (await stat(join(dir, f))).size
  return n
}

describe('the ingest byte budget', () => {
  it('stops a plain text file that tokenizes past it before the write that would pass it', async () => {
    // 126 KB of text through the byte tokenizer: a token a byte, and a byte a token in a shard.
    const { path, outDir } = await staged('a.txt', Array.from({ length: 2000 }, (_, i) => `Paragraph ${i} of an honest little file, with nothing to hide.`).join('\n\n'))
    const job: IngestJob = { path, format: 'text', field: null, source: 'a.txt', tokenizer: { catalog: 'byte' }, outDir, shardTokens: 4096, holdOutEvery: 50, maxValidationTokens: 100_000, budget: { bytes: 64 * 1024, ...BUDGET } }
    await expect(ingestInWorker(job, () => {})).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
      message: expect.stringMatching(/^tokenizing stopped after \d+ documents and 15 shards of 61440 tokens: train shard 16 \(4\.0 KiB\) would take this dataset's shards and index past 64\.0 KiB \(60\.\d KiB so far\), the room it had when tokenizing began: your share of the dataset quota \(1 MiB an account, --user-dataset-quota-mb\) had 1\.0 MiB left; upload a smaller part of the file, or ask the operator for room$/)
    })
    const written = await bytesIn(outDir)
    expect(written).toBeGreaterThan(0)
    expect(written).toBeLessThanOrEqual(64 * 1024)
    // The same file with room enough is tokenized whole.
    const roomy = await staged('a.txt', await readFile(path))
    const result = await ingestInWorker({ ...job, ...roomy, budget: { bytes: 1024 * 1024, ...BUDGET } }, () => {})
    expect(await bytesIn(roomy.outDir)).toBeLessThanOrEqual(1024 * 1024)
    expect(result.train.length).toBeGreaterThan(16)
  })

  it('refuses a Parquet file whose row groups share one compressed page before writing anything', async () => {
    const file = zstdParquet({ groups: 32, rows: 8, rowBytes: 1024 * 1024, shared: true })
    expect(file.length).toBeLessThan(10_000)
    const { path, outDir } = await staged('bomb.parquet', file)
    await expect(ingestInWorker({ path, format: 'parquet', field: 'text', source: 'bomb.parquet', tokenizer: { catalog: 'byte' }, outDir, shardTokens: 1024 * 1024, holdOutEvery: 50, maxValidationTokens: 1024 * 1024, budget: { bytes: 1024 * 1024, ...BUDGET } }, () => {}))
      .rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^row group 1's "text" column chunk \(bytes 4 to \d+\) overlaps row group 0's/) })
    expect(await readdir(outDir)).toEqual([])
  })

  it('stops a Parquet file of pages of their own, within the expansion bound, at the budget', async () => {
    // 3 groups of 8 MiB of text in ~10 KB: 24 MiB, inside the 64 MiB a small file may decompress to.
    const { path, outDir } = await staged('big.parquet', zstdParquet({ groups: 3, rows: 8, rowBytes: 1024 * 1024, shared: false }))
    await expect(ingestInWorker({ path, format: 'parquet', field: 'text', source: 'big.parquet', tokenizer: { catalog: 'byte' }, outDir, shardTokens: 100_000, holdOutEvery: 50, maxValidationTokens: 1024 * 1024, budget: { bytes: 1024 * 1024, ...BUDGET } }, () => {}))
      .rejects.toMatchObject({ code: 'ERR_QUOTA_EXCEEDED', message: expect.stringMatching(/^tokenizing stopped after \d+ documents and 10 shards of 1000000 tokens: train shard 11 \(97\.\d KiB\) would take this dataset's shards and index past 1\.0 MiB/) })
    expect(await bytesIn(outDir)).toBeLessThanOrEqual(1024 * 1024)
  })

  it('counts the document index too, and never writes the block that passes it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-limits-'))
    const budget = new OutputBudget({ bytes: 200 * 1024, ...BUDGET }, () => 'after the test\'s documents')
    const writer = new DocumentIndexWriter(join(dir, 'part'), (n, what) => { budget.take(n, what) })
    const add = async (): Promise<void> => {
      // Random-looking locators: barely compressible, so the part file grows with them.
      for (let i = 0; i < 1_000_000; i++) await writer.add(`row ${(i * 2654435761) % 4294967291}`, i * 3, i * 3 + 2)
      await writer.finish({ format: 'barnraise-documents-v1', source: 's', tokenizer: 'byte', shards: [], heldOut: [] }, join(dir, 'index.gz'))
    }
    await expect(add()).rejects.toMatchObject({ code: 'ERR_QUOTA_EXCEEDED', message: expect.stringMatching(/^tokenizing stopped after the test's documents: the document index \([\d.]+ KiB\) would take this dataset's shards and index past 200\.0 KiB/) })
    expect(await bytesIn(dir)).toBeLessThanOrEqual(200 * 1024)
  })
})

describe('the document index, written as documents arrive', () => {
  it('is the bytes JSON.stringify makes of the index held whole, once gunzipped', async () => {
    // Locators that need escaping, from a tar archive's member names, and held-out documents.
    const dir = await mkdtemp(join(tmpdir(), 'ds-limits-'))
    await writeFile(join(dir, 'a.jsonl'), Array.from({ length: 300 }, (_, i) => JSON.stringify({ text: `Document ${i} "quoted" \\ and ünïcödé ${'word '.repeat(i % 17)}` })).join('\n'))
    const whole = await buildDataset({ reader: await openReader(join(dir, 'a.jsonl'), 'jsonl', 'text'), tokenizer: catalogTokenizer('gpt2-1k'), source: 'a "b".jsonl', shardTokens: 1000, holdOutEvery: 50, maxValidationTokens: 100_000, onShard: async () => {} })
    await mkdir(join(dir, 'out'))
    const streamed = await ingestInWorker({ path: join(dir, 'a.jsonl'), format: 'jsonl', field: 'text', source: 'a "b".jsonl', tokenizer: { catalog: 'gpt2-1k' }, outDir: join(dir, 'out'), shardTokens: 1000, holdOutEvery: 50, maxValidationTokens: 100_000, budget: null }, () => {})
    expect(gunzipSync(await readFile(streamed.indexFile)).toString('utf8')).toBe(JSON.stringify(whole.index))
    expect(streamed.indexDocuments).toBe(whole.index.documents.length)
    expect(whole.indexDocuments).toBe(whole.index.documents.length)
    // A writer given escapes and many blocks' worth of documents.
    const writer = new DocumentIndexWriter(join(dir, 'part'), () => {})
    const documents: Array<[string, number, number]> = Array.from({ length: 200_000 }, (_, i) => [`member "${i % 7}"\n.jsonl: line ${i}`, i * 4, i * 4 + 3])
    for (const [l, s, e] of documents) await writer.add(l, s, e)
    const head = { format: 'barnraise-documents-v1' as const, source: 'x\u2028y', tokenizer: 'byte', shards: [{ sha256: 'a'.repeat(64), tokens: 800_000 }], heldOut: ['line "3"'] }
    await writer.finish(head, join(dir, 'index.gz'))
    const expected = JSON.stringify({ format: head.format, source: head.source, tokenizer: head.tokenizer, shards: head.shards, documents, heldOut: head.heldOut })
    const written = gunzipSync(await readFile(join(dir, 'index.gz'))).toString('utf8')
    // Compared whole, but reported by length and first difference: the strings are 9 MB.
    const differsAt = [...Array(Math.max(written.length, expected.length)).keys()].find((i) => written[i] !== expected[i])
    expect({ length: written.length, differsAt }).toEqual({ length: expected.length, differsAt: undefined })
    expect(await readdir(dir)).not.toContain('part')
  })
})

describe('the tokenizing worker\'s heap', () => {
  it('holds nothing per document: 800,000 three-byte paragraphs tokenize with a 32 MiB worker heap in a 64 MB process', async () => {
    const { path, outDir } = await staged('tiny.txt', Buffer.alloc(800_000 * 3, 'a\n\n'))
    // A process of its own with a 64 MB heap, which a worker without limits of its own inherits:
    // an index held as tuples fills it (as a 12 MiB file filled 256 MB) and fails the file.
    const script = `const { ingestInWorker } = await import(${JSON.stringify(new URL('./ingest-in-worker.ts', import.meta.url).href)})
      const r = await ingestInWorker({ path: ${JSON.stringify(path)}, format: 'text', field: null, source: 'tiny.txt', tokenizer: { catalog: 'byte' }, outDir: ${JSON.stringify(outDir)}, shardTokens: 1048576, holdOutEvery: 50, maxValidationTokens: 1048576, budget: null }, () => {}, undefined, { heapMb: 32 })
      console.log(JSON.stringify({ documents: r.documents, indexDocuments: r.indexDocuments, indexFile: r.indexFile }))`
    await writeFile(join(outDir, '..', 'run.mjs'), script)
    const { stdout } = await promisify(execFile)(process.execPath, ['--max-old-space-size=64', '--disable-warning=ExperimentalWarning', join(outDir, '..', 'run.mjs')], { maxBuffer: 1024 * 1024 })
    const result = JSON.parse(stdout) as { documents: number, indexDocuments: number, indexFile: string }
    expect(result.documents).toBe(800_000)
    expect(result.indexDocuments).toBe(800_000 - 800_000 / 50)
    const index = JSON.parse(gunzipSync(await readFile(result.indexFile)).toString('utf8')) as { documents: Array<[string, number, number]> }
    expect(index.documents).toHaveLength(result.indexDocuments)
    expect(index.documents[1]).toEqual(['line 3', 3, 4])
  })

  it('fails the file alone, saying so, when one step fills it', async () => {
    // One 12 MiB line is a single document: its text and tokens are held at once.
    const lines = [JSON.stringify({ t: 'word '.repeat(12 * 1024 * 1024 / 5) }), ...Array.from({ length: 60 }, (_, i) => JSON.stringify({ t: `small ${i}` }))]
    const job = (path: string, outDir: string): IngestJob => ({ path, format: 'jsonl', field: 't', source: 'a.jsonl', tokenizer: { catalog: 'gpt2-1k' }, outDir, shardTokens: 100_000, holdOutEvery: 50, maxValidationTokens: 100_000, budget: null })
    const small = await staged('a.jsonl', lines.slice(1).join('\n'))
    expect((await ingestInWorker(job(small.path, small.outDir), () => {}, undefined, { heapMb: 32 })).documents).toBe(60)
    const large = await staged('a.jsonl', lines.join('\n'))
    await expect(ingestInWorker(job(large.path, large.outDir), () => {}, undefined, { heapMb: 32 })).rejects.toMatchObject({
      code: 'ERR_BAD_FILE',
      message: expect.stringMatching(/^tokenizing ran out of memory: the worker's 32 MiB heap filled before its first document, in one step too large to hold/)
    })
  })
})
