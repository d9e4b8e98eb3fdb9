// Worker thread body for a tokenizer preview: an uploaded tokenizer's patterns are the uploader's,
// and one that backtracks without end would otherwise hold the coordinator's event loop.
import { parentPort, workerData } from 'node:worker_threads'
import { uploadedTokenizer } from './catalog.ts'
import type { PreviewJob, PreviewMessage } from './tokenizer-preview.ts'

const job = workerData as PreviewJob
const post = (m: PreviewMessage): void => { parentPort!.postMessage(m) }
try {
  const tokenizer = uploadedTokenizer(job.tokenizerJson)
  const ids = Array.from(tokenizer.encode(job.text))
  post({ type: 'done', preview: { name: tokenizer.name, vocabSize: tokenizer.vocabSize, ids, pieces: ids.map((id) => tokenizer.decode([id])) } })
} catch (err) {
  post({ type: 'error', message: (err as Error).message })
}
