// Which dataset an unfinished upload of a local file went to, kept across reloads, and whether a
// new attempt with that file should carry that dataset on. A browser cannot name a file's path,
// so a file is known by its name, size and modification time; the server's row (datasets.get)
// is what is trusted about how far the upload got.

/** The key under which the dashboard remembers its dataset uploads in localStorage. */
export const UPLOADS_STORAGE_KEY = 'barnraise.datasetUploads'

/** Uploads remembered at most; older ones are forgotten first (the server abandons them after a day idle anyway). */
const MAX_REMEMBERED = 20

/** What identifies a local file between page loads without reading it. */
export function fileKey (file: { name: string, size: number, lastModified: number }): string {
  return JSON.stringify([file.name, file.size, file.lastModified])
}

interface Remembered { id: string, savedAt: number }

/** The part of Storage this needs (localStorage in the page, a Map-backed fake in tests). */
export type KeyValueStore = Pick<Storage, 'getItem' | 'setItem'>

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Parses what was stored, keeping only well-formed entries: another version or a hand edit must not break the form. */
function readAll (store: KeyValueStore): Map<string, Remembered> {
  const out = new Map<string, Remembered>()
  let raw: unknown
  try {
    raw = JSON.parse(store.getItem(UPLOADS_STORAGE_KEY) ?? '{}')
  } catch {
    return out
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return out
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof value !== 'object' || value === null) continue
    const { id, savedAt } = value as Record<string, unknown>
    if (typeof id === 'string' && UUID.test(id) && typeof savedAt === 'number' && Number.isFinite(savedAt)) out.set(key, { id, savedAt })
  }
  return out
}

function writeAll (store: KeyValueStore, entries: Map<string, Remembered>): void {
  const newest = [...entries].sort((a, b) => b[1].savedAt - a[1].savedAt).slice(0, MAX_REMEMBERED)
  try {
    store.setItem(UPLOADS_STORAGE_KEY, JSON.stringify(Object.fromEntries(newest)))
  } catch {
    // Storage full or disabled (private mode): resuming after a reload is lost, uploading is not.
  }
}

/** The dataset an earlier upload of this file went to, if this browser remembers one. */
export function recallUpload (store: KeyValueStore, key: string): string | null {
  return readAll(store).get(key)?.id ?? null
}

/** Remembers that this file is being uploaded to dataset `id`. */
export function rememberUpload (store: KeyValueStore, key: string, id: string, now = Date.now()): void {
  const entries = readAll(store)
  entries.set(key, { id, savedAt: now })
  writeAll(store, entries)
}

/** Forgets this file's upload (its dataset failed or is gone). */
export function forgetUpload (store: KeyValueStore, key: string): void {
  const entries = readAll(store)
  if (entries.delete(key)) writeAll(store, entries)
}

/** A dataset row as datasets.get answers, the fields the decision reads. */
export interface DatasetState {
  status: string
  fileName: string
  fileBytes: number
  receivedBytes: number
  format: string
  field: string | null
  tokenizer: string
}

/** How the form would announce this file now. */
export interface Wanted { fileName: string, fileBytes: number, format: string, field: string | null, tokenizer: string }

/**
 * What a new attempt with a file does about the dataset an earlier attempt made: `resume` its
 * upload from the bytes the server holds, `follow` it (already uploaded: tokenizing or ready),
 * or start a `new` one, when there is none, it failed, or it was announced differently (another
 * file, format, text field or tokenizer: its bytes would be read the wrong way).
 */
export function resumeChoice (earlier: DatasetState | null, wanted: Wanted): { kind: 'resume', from: number } | { kind: 'follow' } | { kind: 'new' } {
  if (earlier === null) return { kind: 'new' }
  const field = (f: string | null, format: string): string | null => format === 'text' ? null : (f ?? '').trim()
  const same = earlier.fileName.trim() === wanted.fileName.trim() && earlier.fileBytes === wanted.fileBytes && earlier.format === wanted.format &&
    field(earlier.field, earlier.format) === field(wanted.field, wanted.format) && earlier.tokenizer === wanted.tokenizer
  if (!same) return { kind: 'new' }
  if (earlier.status === 'uploading') return { kind: 'resume', from: earlier.receivedBytes }
  if (earlier.status === 'tokenizing' || earlier.status === 'ready') return { kind: 'follow' }
  return { kind: 'new' }
}

/** The page's localStorage, or a store that keeps nothing where storage is disabled. */
export function browserStore (): KeyValueStore {
  try {
    return window.localStorage
  } catch {
    return { getItem: () => null, setItem: () => {} }
  }
}
