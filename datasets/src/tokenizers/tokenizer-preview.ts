import { callWorker } from '@barnraise/trainer'
import { DatasetError } from '../dataset-error.ts'

/** What a tokenizer makes of a sample: its ids and the text of each token. */
export interface TokenizerPreview { name: string, vocabSize: number, ids: number[], pieces: string[] }

/** The worker's input: an uploaded tokenizer.json's bytes and the sample. */
export interface PreviewJob { tokenizerJson: Uint8Array, text: string }
export type PreviewMessage = { type: 'done', preview: TokenizerPreview } | { type: 'error', message: string }

/** How long a preview may take: parsing a 32 MiB tokenizer.json and 2,000 characters take a second or two. */
export const PREVIEW_TIMEOUT_MS = 15_000
/** Previews on worker threads at once: each parses a whole tokenizer.json (tens of MB of heap). */
export const MAX_PREVIEWS = 2

let running = 0

/**
 * Tokenizes `text` with an uploaded tokenizer.json on a worker thread, stopped after `timeoutMs`
 * (ERR_BAD_OPTIONS: its patterns backtrack without end on this text), at most MAX_PREVIEWS at once
 * (ERR_BUSY beyond). Catalogue tokenizers are trusted and fast; they need none of this.
 */
export async function previewUploadedTokenizer (tokenizerJson: Uint8Array, text: string, timeoutMs = PREVIEW_TIMEOUT_MS): Promise<TokenizerPreview> {
  if (running >= MAX_PREVIEWS) throw new DatasetError('ERR_BUSY', `${MAX_PREVIEWS} tokenizer previews are running already; try again in a few seconds`)
  running++
  try {
    const timeout = AbortSignal.timeout(timeoutMs)
    return await callWorker<TokenizerPreview, PreviewMessage>(new URL('./preview-worker.ts', import.meta.url), {
      what: 'the tokenizer preview',
      workerData: { tokenizerJson, text } satisfies PreviewJob,
      signal: timeout,
      onMessage: (m) => {
        if (m.type === 'done') return { result: m.preview }
        throw new DatasetError('ERR_BAD_OPTIONS', m.message)
      },
      exitError: (code) => new DatasetError('ERR_BAD_OPTIONS', `the tokenizer preview stopped (exit ${code}) before finishing`)
    }).catch((err: unknown) => {
      if (timeout.aborted) throw new DatasetError('ERR_BAD_OPTIONS', `the tokenizer took more than ${timeoutMs / 1000} s on ${text.length} characters and was stopped: one of its regular expressions backtracks without end on this text; fix its pre_tokenizer patterns`)
      throw err
    })
  } finally {
    running--
  }
}
