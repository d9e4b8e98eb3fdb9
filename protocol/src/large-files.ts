// Node's whole-buffer calls stop at 2 GiB: fs.readFile refuses a larger file
// (ERR_FS_FILE_TOO_LARGE) and hash.update a larger buffer ("data is too long"). A 1B model's
// float32 checkpoint is 4.4 GB, so every read or hash of a model-sized blob goes through these.
import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'

/** The most bytes one read or one hash update takes: well under Node's 2 GiB limits. */
const SLICE_BYTES = 1024 ** 3

/** Reads a whole file into one Uint8Array, whatever its size (fs.readFile stops at 2 GiB). */
export async function readWholeFile (path: string): Promise<Uint8Array> {
  const file = await open(path, 'r')
  try {
    const size = (await file.stat()).size
    const bytes = new Uint8Array(size)
    let at = 0
    while (at < size) {
      const { bytesRead } = await file.read(bytes, at, Math.min(SLICE_BYTES, size - at), at)
      // The file shrank while being read: say so rather than return zeros as its tail.
      if (bytesRead === 0) throw new Error(`${path} ended after ${at} of its ${size} bytes while being read`)
      at += bytesRead
    }
    return bytes
  } finally {
    await file.close()
  }
}

/** sha256 of bytes, lowercase hex, whatever their size (hash.update stops at 2 GiB). */
export function sha256Hex (bytes: Uint8Array): string {
  const hash = createHash('sha256')
  for (let at = 0; at < bytes.byteLength; at += SLICE_BYTES) hash.update(bytes.subarray(at, at + SLICE_BYTES))
  return hash.digest('hex')
}
