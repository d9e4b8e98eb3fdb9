// Worker thread body: tokenizing gigabytes must not block the coordinator's event loop.
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { catalogTokenizer, uploadedTokenizer } from '../tokenizers/catalog.ts'
import { openReader } from '../readers/open-reader.ts'
import { buildDataset } from './build-dataset.ts'
import { DocumentIndexWriter } from './document-index-writer.ts'
import { INDEX_FILE, INGEST_HEARTBEAT_MS } from './ingest-job.ts'
import type { IngestJob, IngestMessage } from './ingest-job.ts'
import { OutputBudget } from './output-budget.ts'

const job = workerData as IngestJob
const post = (m: IngestMessage): void => { parentPort!.postMessage(m) }
// Stops arriving while one step blocks the thread (a tokenizer stuck on a document), which is how
// the caller tells a stuck worker from a slow file.
const heartbeat = setInterval(() => { post({ type: 'alive' }) }, INGEST_HEARTBEAT_MS)

try {
  const tokenizer = 'catalog' in job.tokenizer ? catalogTokenizer(job.tokenizer.catalog) : uploadedTokenizer(readFileSync(job.tokenizer.file))
  const reader = await openReader(job.path, job.format, job.field)
  let shards = 0
  let tokens = 0
  // A job from a caller that left the budget out (plain JavaScript) is unbounded, not broken.
  const budget = new OutputBudget(job.budget ?? null, () => `after ${index.documents} documents and ${shards} shards of ${tokens} tokens`)
  // Every byte the job leaves in outDir is counted before it is written: shards, then the index.
  const take = (bytes: number, what: string): void => { budget.take(bytes, what) }
  const index = new DocumentIndexWriter(join(job.outDir, `${INDEX_FILE}.part`), take)
  const result = await buildDataset({
    reader,
    tokenizer,
    source: job.source,
    shardTokens: job.shardTokens,
    holdOutEvery: job.holdOutEvery,
    maxValidationTokens: job.maxValidationTokens,
    onShard: async (bytes, manifest, split) => {
      take(bytes.byteLength, split === 'train' ? `train shard ${shards + 1}` : 'the validation shard')
      await writeFile(join(job.outDir, manifest.sha256), bytes)
      shards++
      tokens += manifest.tokens
    },
    onDocument: (locator, start, end) => index.add(locator, start, end),
    onProgress: (progress) => { post({ type: 'progress', progress }) }
  })
  const { index: head, ...rest } = result
  const indexFile = join(job.outDir, INDEX_FILE)
  await index.finish(head, indexFile)
  post({ type: 'done', result: { ...rest, indexFile, indexDocuments: index.documents } })
} catch (err) {
  const e = err as { code?: unknown, message?: unknown }
  post({ type: 'error', code: typeof e.code === 'string' ? e.code : 'ERR_INGEST_FAILED', message: String(e.message ?? err) })
}
clearInterval(heartbeat)
