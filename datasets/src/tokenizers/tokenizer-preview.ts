import { Worker } from 'node:worker_threads'
import { DatasetError } from '../dataset-error.ts'

/** What a tokenizer makes of a sample: its ids and the text of each token. */
export interface TokenizerPreview { name: string, vocabSize: number, ids: number[], pieces: string[] }

/** A preview asked of the worker: the tokenizer's bytes go along only the first time it sees them. */
export interface PreviewRequest { id: number, sha256: string, tokenizerJson?: Uint8Array, text: string }
export type PreviewReply = { id: number, type: 'done', preview: TokenizerPreview } | { id: number, type: 'error', message: string }

/** How long one preview may take: parsing a 32 MiB tokenizer.json and encoding 2,000 characters take a second or two. */
export const PREVIEW_TIMEOUT_MS = 15_000
/** Previews waiting for the worker at most; more are refused as busy. */
export const MAX_WAITING_PREVIEWS = 8

/** The one preview worker, made on first use and again after a preview it had to be stopped for. */
let worker: PreviewThread | null = null

interface PreviewThread { thread: Worker, loaded: Set<string>, failure: string | null }
let nextId = 0
let queue: Promise<unknown> = Promise.resolve()
let waiting = 0

function previewWorker (): PreviewThread {
  if (worker === null) {
    const thread = new Worker(new URL('./preview-worker.ts', import.meta.url))
    // Previews never keep the process alive.
    thread.unref()
    const made: PreviewThread = { thread, loaded: new Set<string>(), failure: null }
    // A thread that throws outside a preview (it cannot load, say) exits; its preview is refused with why.
    thread.on('error', (err) => { made.failure = err.message })
    thread.once('exit', () => { if (worker === made) worker = null })
    worker = made
  }
  return worker
}

/**
 * Tokenizes `text` with the uploaded tokenizer.json `sha256` (its bytes from `bytesOf`, read only
 * when the worker has not parsed it yet) on a worker thread, one preview at a time. One that takes
 * longer than `timeoutMs` has its worker stopped (ERR_BAD_OPTIONS: a pattern backtracks without end
 * on this text); past MAX_WAITING_PREVIEWS waiting, ERR_BUSY. Catalogue tokenizers are trusted.
 */
export async function previewUploadedTokenizer (sha256: string, bytesOf: () => Promise<Uint8Array>, text: string, timeoutMs = PREVIEW_TIMEOUT_MS): Promise<TokenizerPreview> {
  if (waiting >= MAX_WAITING_PREVIEWS) throw new DatasetError('ERR_BUSY', `${MAX_WAITING_PREVIEWS} tokenizer previews are waiting already; try again in a few seconds`)
  waiting++
  const turn = queue.then(async () => await runPreview(sha256, bytesOf, text, timeoutMs))
  queue = turn.catch(() => {})
  try {
    return await turn
  } finally {
    waiting--
  }
}

async function runPreview (sha256: string, bytesOf: () => Promise<Uint8Array>, text: string, timeoutMs: number): Promise<TokenizerPreview> {
  const w = previewWorker()
  const request: PreviewRequest = { id: nextId++, sha256, text, ...(w.loaded.has(sha256) ? {} : { tokenizerJson: await bytesOf() }) }
  return await new Promise<TokenizerPreview>((resolve, reject) => {
    const finish = (): void => {
      clearTimeout(timer)
      w.thread.off('message', onMessage)
      w.thread.off('exit', onExit)
    }
    const onMessage = (m: PreviewReply): void => {
      if (m.id !== request.id) return
      finish()
      if (m.type === 'done') { w.loaded.add(sha256); resolve(m.preview) } else reject(new DatasetError('ERR_BAD_OPTIONS', m.message))
    }
    const onExit = (code: number): void => {
      finish()
      reject(new DatasetError('ERR_BAD_OPTIONS', `the tokenizer preview stopped (exit ${code}${w.failure === null ? '' : `: ${w.failure}`}) before finishing`))
    }
    const timer = setTimeout(() => {
      finish()
      // The thread is stuck in the tokenizer's regex: only stopping it ends that.
      if (worker === w) worker = null
      void w.thread.terminate()
      reject(new DatasetError('ERR_BAD_OPTIONS', `the tokenizer took more than ${timeoutMs / 1000} s on ${text.length} characters and was stopped: one of its regular expressions backtracks without end on this text; fix its pre_tokenizer patterns`))
    }, timeoutMs)
    w.thread.on('message', onMessage)
    w.thread.once('exit', onExit)
    w.thread.postMessage(request)
  })
}
