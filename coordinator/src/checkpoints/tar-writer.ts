// A streaming ustar (POSIX.1-1988) writer: the archive's size is known before the first byte,
// so it can be sent with a Content-Length, and file bytes are pulled one chunk at a time, so a
// multi-gigabyte model is never held in memory.

/** One member of an archive; a file states its size up front and yields its bytes when read. */
export type TarEntry =
  | { type: 'directory', name: string, mtime: Date }
  | { type: 'file', name: string, mtime: Date, size: number, read: () => AsyncIterable<Uint8Array> }

const BLOCK = 512
/** The largest size 11 octal digits hold; larger files get GNU's base-256 size, which GNU tar, bsdtar and Python read. */
const OCTAL_SIZE_LIMIT = 8 ** 11
const ZEROS = new Uint8Array(2 * BLOCK)

function padding (size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/** Bytes the archive of `entries` takes: a header per entry, data padded to 512, two zero blocks at the end. */
export function tarSize (entries: Array<{ type: 'directory' } | { type: 'file', size: number }>): number {
  let total = 2 * BLOCK
  for (const e of entries) total += BLOCK + (e.type === 'file' ? e.size + padding(e.size) : 0)
  return total
}

function writeAscii (header: Uint8Array, offset: number, length: number, value: string): void {
  if (value.length > length) throw new Error(`tar field of ${length} bytes cannot hold ${JSON.stringify(value)}`)
  for (let i = 0; i < value.length; i++) header[offset + i] = value.charCodeAt(i)
}

/** A zero-padded octal number ending in NUL, as ustar numeric fields are. */
function writeOctal (header: Uint8Array, offset: number, length: number, value: number): void {
  writeAscii(header, offset, length - 1, Math.floor(value).toString(8).padStart(length - 1, '0'))
}

function writeSize (header: Uint8Array, size: number): void {
  if (size < OCTAL_SIZE_LIMIT) { writeOctal(header, 124, 12, size); return }
  // GNU base-256: high bit of the first byte set, then the size big-endian in the other 11.
  header[124] = 0x80
  let rest = size
  for (let i = 135; i > 124; i--) { header[i] = rest % 256; rest = Math.floor(rest / 256) }
}

/** Splits a path into ustar's 155-byte prefix and 100-byte name, at a slash. */
function splitName (path: string): { prefix: string, name: string } {
  if (!/^[\x20-\x7e]+$/.test(path) || path.split('/').includes('..') || path.startsWith('/')) {
    throw new Error(`tar member name must be a relative printable-ASCII path: ${JSON.stringify(path)}`)
  }
  if (path.length <= 100) return { prefix: '', name: path }
  const cut = path.lastIndexOf('/', path.length - 2)
  if (cut <= 0 || cut > 155 || path.length - cut - 1 > 100) throw new Error(`tar member name is too long for ustar: ${path}`)
  return { prefix: path.slice(0, cut), name: path.slice(cut + 1) }
}

/** The 512-byte ustar header of one entry. */
export function tarHeader (entry: TarEntry): Uint8Array {
  const header = new Uint8Array(BLOCK)
  const { prefix, name } = splitName(entry.type === 'directory' && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name)
  writeAscii(header, 0, 100, name)
  writeOctal(header, 100, 8, entry.type === 'directory' ? 0o755 : 0o644)
  writeOctal(header, 108, 8, 0) // uid
  writeOctal(header, 116, 8, 0) // gid
  writeSize(header, entry.type === 'file' ? entry.size : 0)
  writeOctal(header, 136, 12, Math.max(0, entry.mtime.getTime() / 1000))
  writeAscii(header, 148, 8, '        ') // checksum counts as spaces while it is computed
  header[156] = (entry.type === 'directory' ? '5' : '0').charCodeAt(0)
  writeAscii(header, 257, 6, 'ustar\0')
  writeAscii(header, 263, 2, '00')
  writeOctal(header, 329, 8, 0) // devmajor
  writeOctal(header, 337, 8, 0) // devminor
  writeAscii(header, 345, 155, prefix)
  let sum = 0
  for (const b of header) sum += b
  writeAscii(header, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `)
  return header
}

/**
 * The archive, chunk by chunk. A file that yields more or fewer bytes than it announced stops
 * the stream with an error: a Content-Length already went out, and a silently shifted archive
 * would extract garbage.
 */
export async function * tarChunks (entries: TarEntry[]): AsyncGenerator<Uint8Array> {
  for (const entry of entries) {
    yield tarHeader(entry)
    if (entry.type !== 'file') continue
    let sent = 0
    for await (const chunk of entry.read()) {
      sent += chunk.byteLength
      if (sent > entry.size) throw new Error(`${entry.name} is longer than the ${entry.size} bytes announced`)
      yield chunk
    }
    if (sent !== entry.size) throw new Error(`${entry.name} ended after ${sent} of ${entry.size} bytes`)
    const pad = padding(entry.size)
    if (pad > 0) yield ZEROS.subarray(0, pad)
  }
  yield ZEROS
}
