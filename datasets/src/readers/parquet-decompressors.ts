import * as zlib from 'node:zlib'
import type { CompressionCodec, Compressors } from 'hyparquet'
import { DatasetError } from '../dataset-error.ts'

// hyparquet decodes UNCOMPRESSED and SNAPPY pages itself; these decode the other codecs writers
// use. A page's compressed bytes are the writer's, so each decoder stops at the size the page
// header declares (bounded per row group before hyparquet runs) and must produce exactly that
// many bytes: more is a decompression bomb, fewer or unreadable is a broken file. Either way the
// error names the page and is ERR_BAD_FILE, never an allocation the size of the bomb.

/** Names the page whose compressed bytes are `input`, as "the page at byte 120 of row group 3". */
export type PageNamer = (input: Uint8Array) => string

/** Largest declared page size checked again here (a row group's whole text column is bounded to 1 GiB before). */
const MAX_PAGE_BYTES = 2 ** 31 - 1
/** An LZ4 input byte makes at most 255 output bytes (a length byte of 255), so a larger claim is false. */
const LZ4_MAX_RATIO = 255

type ZlibDecode = (input: Uint8Array, options: { maxOutputLength: number }) => Uint8Array
// zstd came to node:zlib in Node 22.15 and 23.8; an older Node must refuse ZSTD pages, not crash
// (so no named import: a missing one fails the whole module at load).
const zstdDecompress: unknown = (zlib as Record<string, unknown>).zstdDecompressSync
const zstd: ZlibDecode | undefined = typeof zstdDecompress === 'function' ? zstdDecompress as ZlibDecode : undefined

/** hyparquet's decompressors for the pages of one column chunk; `name` places a page in error messages. */
export function pageDecompressors (name: PageNamer): Compressors {
  return {
    GZIP: zlibDecompressor('GZIP', zlib.unzipSync, name),
    BROTLI: zlibDecompressor('BROTLI', zlib.brotliDecompressSync, name),
    ZSTD: zlibDecompressor('ZSTD', zstd, name),
    LZ4_RAW: lz4Decompressor('LZ4_RAW', decodeLz4Block, name),
    LZ4: lz4Decompressor('LZ4', decodeLz4Legacy, name),
    LZO: (input) => { throw new DatasetError('ERR_BAD_FILE', `${name(input)} is LZO-compressed, which is not read: write the file with ZSTD, Snappy, GZIP, Brotli, LZ4_RAW or no compression`) }
  }
}

function tooLarge (where: string, codec: string, declared: number): DatasetError {
  return new DatasetError('ERR_BAD_FILE', `${where}: its ${codec} data decompresses to more than the ${declared} bytes its header declares`)
}
function tooSmall (where: string, codec: string, declared: number, got: number): DatasetError {
  return new DatasetError('ERR_BAD_FILE', `${where}: its ${codec} data decompresses to ${got} bytes where its header declares ${declared}`)
}
function corrupt (where: string, codec: string, why: string): DatasetError {
  return new DatasetError('ERR_BAD_FILE', `${where}: its ${codec} data is corrupt (${why.slice(0, 200)})`)
}

/** hyparquet passes the header's size, less a v2 page's level bytes: a hostile header can make that negative. */
function checkDeclared (where: () => string, codec: string, declared: number): void {
  if (!Number.isSafeInteger(declared) || declared < 0 || declared > MAX_PAGE_BYTES) {
    throw new DatasetError('ERR_BAD_FILE', `${where()}: its ${codec} data is declared to decompress to ${declared} bytes`)
  }
}

function zlibDecompressor (codec: CompressionCodec, decode: ZlibDecode | undefined, name: PageNamer): (input: Uint8Array, declared: number) => Uint8Array {
  return (input, declared) => {
    checkDeclared(() => name(input), codec, declared)
    if (decode === undefined) throw new DatasetError('ERR_BAD_FILE', `${name(input)} is ${codec}-compressed and this server's Node ${process.version} has no ${codec} decoder (Node 22.15 or later has): write the file with Snappy or no compression`)
    if (declared === 0 && input.length === 0) return input
    let page: Uint8Array
    try {
      // node:zlib stops and throws ERR_BUFFER_TOO_LARGE once the output passes the limit; it takes no limit of 0.
      page = decode(input, { maxOutputLength: Math.max(declared, 1) })
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(name(input), codec, declared)
      throw corrupt(name(input), codec, err instanceof Error ? err.message : String(err))
    }
    if (page.length > declared) throw tooLarge(name(input), codec, declared)
    // A truncated zstd frame decodes to what it holds without an error: the length tells.
    if (page.length < declared) throw tooSmall(name(input), codec, declared, page.length)
    return page
  }
}

/** Why an LZ4 block did not decode into exactly its output; `overrun` means it would write past the end. */
export interface Lz4Failure { overrun: boolean, why: string }

function lz4Decompressor (codec: CompressionCodec, decode: (input: Uint8Array, output: Uint8Array) => Lz4Failure | undefined, name: PageNamer): (input: Uint8Array, declared: number) => Uint8Array {
  return (input, declared) => {
    checkDeclared(() => name(input), codec, declared)
    // The output is allocated whole, so a size LZ4 could never make of these bytes is refused first.
    if (declared > input.length * LZ4_MAX_RATIO) throw new DatasetError('ERR_BAD_FILE', `${name(input)}: its header declares ${declared} bytes, more than ${codec} can make of its ${input.length}`)
    const page = new Uint8Array(declared)
    const failure = decode(input, page)
    if (failure === undefined) return page
    if (failure.overrun) throw tooLarge(name(input), codec, declared)
    throw corrupt(name(input), codec, failure.why)
  }
}

/**
 * Decodes one LZ4 block (the format of Parquet's LZ4_RAW) into `output`, which it must fill
 * exactly; every length, offset and copy is checked against both ends before it is made.
 */
export function decodeLz4Block (input: Uint8Array, output: Uint8Array): Lz4Failure | undefined {
  let ip = 0
  let op = 0
  const inEnd = input.length
  const outEnd = output.length
  // A length of 15 in the token continues in bytes that each add to it, up to one below 255.
  const extend = (n: number): number | undefined => {
    let byte: number
    do {
      if (ip >= inEnd) return undefined
      byte = input[ip++]!
      n += byte
    } while (byte === 255)
    return n
  }
  if (inEnd === 0) return { overrun: false, why: 'an empty block' }
  while (ip < inEnd) {
    const token = input[ip++]!
    const literals = (token >>> 4) === 15 ? extend(15) : token >>> 4
    if (literals === undefined) return { overrun: false, why: `a literal length at input byte ${ip} is cut off` }
    if (literals > inEnd - ip) return { overrun: false, why: `${literals} literals at input byte ${ip} run past the block's end` }
    if (literals > outEnd - op) return { overrun: true, why: 'literals past the output' }
    output.set(input.subarray(ip, ip + literals), op)
    ip += literals
    op += literals
    // The last sequence is literals alone.
    if (ip === inEnd) break
    if (inEnd - ip < 2) return { overrun: false, why: `a match offset at input byte ${ip} is cut off` }
    const offset = input[ip]! | (input[ip + 1]! << 8)
    ip += 2
    if (offset === 0 || offset > op) return { overrun: false, why: `a match at output byte ${op} reaches back ${offset} bytes` }
    const matched = (token & 15) === 15 ? extend(15) : token & 15
    if (matched === undefined) return { overrun: false, why: `a match length at input byte ${ip} is cut off` }
    let length = matched + 4
    if (length > outEnd - op) return { overrun: true, why: 'a match past the output' }
    // A match may overlap its own output (offset 1 repeats a byte): copy what exists, doubling.
    const from = op - offset
    while (length > 0) {
      const n = Math.min(length, op - from)
      output.copyWithin(op, from, from + n)
      op += n
      length -= n
    }
  }
  if (op !== outEnd) return { overrun: false, why: `the block makes ${op} bytes where ${outEnd} are declared` }
  return undefined
}

/**
 * Parquet's legacy LZ4 codec: parquet-mr wrote Hadoop's framing (per block, its decompressed and
 * compressed sizes as big-endian 32-bit numbers, then an LZ4 block), older parquet-cpp a bare
 * block. As Arrow does, the framing is tried first and a bare block second.
 */
export function decodeLz4Legacy (input: Uint8Array, output: Uint8Array): Lz4Failure | undefined {
  const framed = decodeLz4Hadoop(input, output)
  if (framed === undefined) return undefined
  const bare = decodeLz4Block(input, output)
  if (bare === undefined) return undefined
  // Either reading says the bytes make more than declared: refused as the bomb it may be.
  if (framed.overrun || bare.overrun) return { overrun: true, why: 'past the output' }
  return { overrun: false, why: `neither Hadoop-framed LZ4 (${framed.why}) nor a bare LZ4 block (${bare.why}); a writer names bare blocks LZ4_RAW` }
}

function decodeLz4Hadoop (input: Uint8Array, output: Uint8Array): Lz4Failure | undefined {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength)
  let ip = 0
  let op = 0
  while (ip < input.length) {
    if (input.length - ip < 8) return { overrun: false, why: `a block header at input byte ${ip} is cut off` }
    const raw = view.getUint32(ip)
    const stored = view.getUint32(ip + 4)
    ip += 8
    if (stored > input.length - ip) return { overrun: false, why: `a block of ${stored} bytes at input byte ${ip} runs past the page` }
    if (raw > output.length - op) return { overrun: true, why: `a block of ${raw} bytes at output byte ${op} runs past the ${output.length} declared` }
    const failure = decodeLz4Block(input.subarray(ip, ip + stored), output.subarray(op, op + raw))
    if (failure !== undefined) return failure
    ip += stored
    op += raw
  }
  if (op !== output.length) return { overrun: false, why: `the blocks make ${op} bytes where ${output.length} are declared` }
  return undefined
}
