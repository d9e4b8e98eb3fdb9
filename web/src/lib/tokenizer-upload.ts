// Sends a Hugging Face tokenizer.json to PUT /api/tokenizers (organizers only); the coordinator
// checks it, stores it and answers the name datasets use for it: sha256:<hex of its bytes>.

/** The coordinator's limit (MAX_TOKENIZER_JSON_BYTES), checked here first so a huge file is not sent for nothing. */
export const MAX_TOKENIZER_FILE_BYTES = 32 * 1024 * 1024

/** An uploaded tokenizer as the form offers it. */
export interface UploadedTokenizer { name: string, vocabSize: number, fileName: string }

const SHA_NAME = /^sha256:[0-9a-f]{64}$/

/** Sends `file` and returns what the coordinator made of it; throws an Error whose message says what is wrong. */
export async function uploadTokenizerFile (file: File, send: (url: string, init: RequestInit) => Promise<Response> = async (url, init) => await fetch(url, init)): Promise<UploadedTokenizer> {
  if (file.size === 0) throw new Error(`${file.name} is empty`)
  if (file.size > MAX_TOKENIZER_FILE_BYTES) throw new Error(`${file.name} is larger than the ${MAX_TOKENIZER_FILE_BYTES / 1024 / 1024} MiB a tokenizer.json may be`)
  let res: Response
  try {
    res = await send('/api/tokenizers', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: file, credentials: 'same-origin' })
  } catch {
    throw new Error('could not reach the coordinator; check your connection and try again')
  }
  const body: unknown = await res.json().catch(() => null)
  const fields = typeof body === 'object' && body !== null ? body as Record<string, unknown> : {}
  if (!res.ok) throw new Error(typeof fields.error === 'string' ? `${file.name} was refused: ${fields.error}` : `the coordinator refused ${file.name} (HTTP ${res.status})`)
  if (typeof fields.name !== 'string' || !SHA_NAME.test(fields.name) || typeof fields.vocabSize !== 'number' || !Number.isSafeInteger(fields.vocabSize) || fields.vocabSize < 1) {
    throw new Error('the coordinator answered something other than a tokenizer name and vocabulary size')
  }
  return { name: fields.name, vocabSize: fields.vocabSize, fileName: file.name }
}
