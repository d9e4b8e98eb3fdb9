// Worker thread body: tokenizing gigabytes must not block the coordinator's event loop.
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { gzipSync } from 'node:zlib'
import { catalogTokenizer, uploadedTokenizer } from '../tokenizers/catalog.ts'
import { openReader } from '../readers/open-reader.ts'
import { buildDataset } from './build-dataset.ts'
import { INDEX_FILE, INGEST_HEARTBEAT_MS } from './ingest-job.ts'
import type { IngestJob, IngestMessage } from './ingest-job.ts'

const job = workerData as IngestJob
const post = (m: IngestMessage): void => { parentPort!.postMessage(m) }
// Stops arriving while one step blocks the thread (a tokenizer stuck on a document), which is how
// the caller tells a stuck worker from a slow file.
const heartbeat = setInterval(() => { post({ type: 'alive' }) }, INGEST_HEARTBEAT_MS)

try {
  const tokenizer = 'catalog' in job.tokenizer ? catalogTokenizer(job.tokenizer.catalog) : uploadedTokenizer(readFileSync(job.tokenizer.file))
  const reader = await openReader(job.path, job.format, job.field)
  const result = await buildDataset({
    reader,
    tokenizer,
    source: job.source,
    shardTokens: job.shardTokens,
    holdOutEvery: job.holdOutEvery,
    maxValidationTokens: job.maxValidationTokens,
    onShard: async (bytes, manifest) => { await writeFile(join(job.outDir, manifest.sha256), bytes) },
    onProgress: (progress) => { post({ type: 'progress', progress }) }
  })
  const { index, ...rest } = result
  const indexFile = join(job.outDir, INDEX_FILE)
  await writeFile(indexFile, gzipSync(JSON.stringify(index)))
  post({ type: 'done', result: { ...rest, indexFile, indexDocuments: index.documents.length } })
} catch (err) {
  const e = err as { code?: unknown, message?: unknown }
  post({ type: 'error', code: typeof e.code === 'string' ? e.code : 'ERR_INGEST_FAILED', message: String(e.message ?? err) })
}
clearInterval(heartbeat)
