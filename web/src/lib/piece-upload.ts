// Sends a file to PUT /api/datasets/<id>/file in pieces, resuming where the server stands after
// a dropped connection or a refusal that says where it is. The server keeps every piece it
// took, so a later call with `from` = the dataset's receivedBytes carries on (upload-resume.ts).

/** Bytes per piece: large enough to keep requests few, small enough to retry cheaply. */
export const PIECE_BYTES = 8 * 1024 * 1024

const MAX_RETRIES = 8

/** Why an upload stopped; `resumable` when the server kept what it had and a later attempt carries on. */
export class UploadError extends Error {
  readonly resumable: boolean
  constructor (message: string, resumable: boolean) {
    super(message)
    this.resumable = resumable
  }
}

/** How a piece travels: `fetch` in the page, a fake in tests. */
export type PieceTransport = (url: string, init: RequestInit) => Promise<Response>

export interface UploadOptions {
  url: string
  file: Blob
  /** the bytes the server already holds */
  from: number
  onProgress: (received: number) => void
  /** asks the server where the upload stands */
  received: () => Promise<number>
  signal?: AbortSignal
  send?: PieceTransport
  /** waits between retries; tests pass one that does not */
  wait?: (ms: number) => Promise<void>
}

interface Answer { code?: unknown, error?: unknown, receivedBytes?: unknown }

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** The message once retries are spent: true because the next attempt asks the server where it stands. */
export function keepsFailingMessage (reason: string): string {
  return `the upload keeps failing (${reason}). What reached the coordinator is kept: upload again (after a reload, choose the same file first) and it carries on from there`
}

/**
 * Uploads `file` from byte `from` to the end; `onProgress` hears the bytes the server has
 * confirmed. Network failures, 5xx and "busy" answers are retried with backoff, asking
 * `received()` where the upload stands; other refusals stop it at once (resumable only for a
 * full quota, 413: the pieces already taken are kept).
 */
export async function uploadPieces (opts: UploadOptions): Promise<void> {
  const { file } = opts
  const send = opts.send ?? (async (url, init) => await fetch(url, init))
  const wait = opts.wait ?? sleep
  let at = opts.from
  let failures = 0
  /** Counts a transient failure, waits, and re-reads where the server stands (keeping `at` if it cannot say). */
  const retry = async (reason: string): Promise<void> => {
    if (++failures > MAX_RETRIES) throw new UploadError(keepsFailingMessage(reason), true)
    await wait(500 * 2 ** Math.min(failures, 5))
    try {
      at = await opts.received()
      opts.onProgress(at)
    } catch {
      // Still unreachable: the next piece's answer (or its 409) says where the server stands.
    }
  }
  while (at < file.size) {
    const end = Math.min(at + PIECE_BYTES, file.size)
    let res: Response
    try {
      res = await send(opts.url, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `bytes ${at}-${end - 1}/${file.size}` },
        body: file.slice(at, end),
        credentials: 'same-origin',
        ...(opts.signal !== undefined ? { signal: opts.signal } : {})
      })
    } catch (err) {
      if (opts.signal?.aborted === true) throw err
      await retry(err instanceof Error ? err.message : String(err))
      continue
    }
    const body = await res.json().catch(() => ({})) as Answer
    const serverAt = typeof body.receivedBytes === 'number' && Number.isSafeInteger(body.receivedBytes) ? body.receivedBytes : undefined
    if (res.ok) {
      failures = 0
      at = serverAt ?? end
      opts.onProgress(at)
      continue
    }
    if (res.status === 409 && serverAt !== undefined) { at = serverAt; opts.onProgress(at); continue }
    if (res.status === 429) {
      if (++failures > MAX_RETRIES) throw new UploadError(keepsFailingMessage('the coordinator stayed busy'), true)
      await wait(300 * failures)
      continue
    }
    if (res.status >= 500) { await retry(`HTTP ${res.status}`); continue }
    // A full quota is not retried (room comes back when uploads end or data is deleted, not in
    // seconds), but the server keeps every piece it took: a later attempt carries on from there.
    throw new UploadError(typeof body.error === 'string' ? body.error : `the coordinator refused the upload (HTTP ${res.status})`, res.status === 413)
  }
}
