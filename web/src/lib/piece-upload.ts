// Sends a file to PUT /api/datasets/<id>/file in pieces, resuming where the server stands after
// a dropped connection or a refusal that says where it is.

/** Bytes per piece: large enough to keep requests few, small enough to retry cheaply. */
export const PIECE_BYTES = 8 * 1024 * 1024

const MAX_RETRIES = 8

export class UploadError extends Error {}

interface Refusal { code?: string, error?: string, receivedBytes?: number }

/**
 * Uploads `file` from byte `from` (what the server already holds) to the end; `onProgress`
 * hears the bytes the server has confirmed. Network failures and "busy" answers are retried
 * with backoff, asking `received()` where the upload stands; other refusals stop it.
 */
export async function uploadPieces (opts: { url: string, file: Blob, from: number, onProgress: (received: number) => void, received: () => Promise<number>, signal?: AbortSignal }): Promise<void> {
  const { file } = opts
  let at = opts.from
  let failures = 0
  while (at < file.size) {
    const end = Math.min(at + PIECE_BYTES, file.size)
    let res: Response
    try {
      res = await fetch(opts.url, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `bytes ${at}-${end - 1}/${file.size}` },
        body: file.slice(at, end),
        credentials: 'same-origin',
        ...(opts.signal !== undefined ? { signal: opts.signal } : {})
      })
    } catch (err) {
      if (opts.signal?.aborted === true) throw err
      if (++failures > MAX_RETRIES) throw new UploadError(`the upload keeps failing (${(err as Error).message}); try again later — it will resume where it stopped`)
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** Math.min(failures, 5)))
      at = await opts.received()
      opts.onProgress(at)
      continue
    }
    const body = await res.json().catch(() => ({})) as Refusal & { receivedBytes?: number }
    if (res.ok) {
      failures = 0
      at = body.receivedBytes ?? end
      opts.onProgress(at)
      continue
    }
    if (res.status === 409 && typeof body.receivedBytes === 'number') { at = body.receivedBytes; opts.onProgress(at); continue }
    if (res.status === 429 && ++failures <= MAX_RETRIES) { await new Promise((resolve) => setTimeout(resolve, 300 * failures)); continue }
    throw new UploadError(body.error ?? `the coordinator refused the upload (HTTP ${res.status})`)
  }
}
