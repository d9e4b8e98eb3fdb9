// The page decompressors on their own: LZ4 blocks against bytes the reference lz4 tool wrote, and
// hostile blocks and streams (offsets out of range, lengths past either end, bombs, truncation).
import { brotliCompressSync, gzipSync, zstdCompressSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { decodeLz4Block, pageDecompressors } from './parquet-decompressors.ts'

const where = (): string => 'the page at byte 7 of row group 2'
const decompressors = pageDecompressors(where)
const decompress = (codec: 'GZIP' | 'BROTLI' | 'ZSTD' | 'LZ4_RAW' | 'LZ4' | 'LZO', input: Uint8Array, declared: number): Uint8Array => decompressors[codec]!(input, declared)

// Made once with lz4 1.9 (`lz4 -c --no-frame-crc -BD -12`), the block cut from its frame: it holds
// literals, matches with extended lengths and an offset-1 match that overlaps its own output.
const REFERENCE_TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(4) + 'Pack my box with five dozen liquor jugs. '.repeat(3) + 'a'.repeat(40) + '!'
const REFERENCE_BLOCK = Buffer.from('ff1e54686520717569636b2062726f776e20666f78206a756d7073206f76657220746865206c617a7920646f672e202d0074ff185061636b206d7920626f782077697468206669766520646f7a656e206c6971756f72206a7567732900411f61010010506161616121', 'hex')

/** Hadoop's LZ4 framing of one block: its decompressed and compressed sizes, big-endian. */
function hadoopFramed (block: Uint8Array, size: number): Buffer {
  const header = Buffer.alloc(8)
  header.writeUInt32BE(size, 0)
  header.writeUInt32BE(block.length, 4)
  return Buffer.concat([header, block])
}

describe('LZ4 blocks', () => {
  it('decodes a block the reference lz4 wrote', () => {
    const out = new Uint8Array(REFERENCE_TEXT.length)
    expect(decodeLz4Block(REFERENCE_BLOCK, out)).toBeUndefined()
    expect(Buffer.from(out).toString()).toBe(REFERENCE_TEXT)
    expect(Buffer.from(decompress('LZ4_RAW', REFERENCE_BLOCK, REFERENCE_TEXT.length)).toString()).toBe(REFERENCE_TEXT)
  })

  it('reads the legacy LZ4 codec framed the Hadoop way, or as a bare block', () => {
    expect(Buffer.from(decompress('LZ4', hadoopFramed(REFERENCE_BLOCK, REFERENCE_TEXT.length), REFERENCE_TEXT.length)).toString()).toBe(REFERENCE_TEXT)
    expect(Buffer.from(decompress('LZ4', REFERENCE_BLOCK, REFERENCE_TEXT.length)).toString()).toBe(REFERENCE_TEXT)
    const two = Buffer.concat([hadoopFramed(REFERENCE_BLOCK, REFERENCE_TEXT.length), hadoopFramed(REFERENCE_BLOCK, REFERENCE_TEXT.length)])
    expect(Buffer.from(decompress('LZ4', two, 2 * REFERENCE_TEXT.length)).toString()).toBe(REFERENCE_TEXT.repeat(2))
    expect(() => decompress('LZ4', Buffer.from([0, 0, 0, 9, 0, 0, 0, 1, 0x10]), 9)).toThrow(/its LZ4 data is corrupt \(neither Hadoop-framed LZ4 .* nor a bare LZ4 block .*LZ4_RAW\)/)
  })

  it('copies a match that overlaps its own output', () => {
    // "ab", then a match of 12 reaching back 2: "ababababababab".
    const block = Buffer.from([0x28, 0x61, 0x62, 0x02, 0x00, 0x00])
    const out = new Uint8Array(14)
    expect(decodeLz4Block(block, out)).toBeUndefined()
    expect(Buffer.from(out).toString()).toBe('ab'.repeat(7))
  })

  it('refuses match offsets of 0 or reaching before the output', () => {
    expect(decodeLz4Block(Buffer.from([0x10, 0x61, 0x00, 0x00]), new Uint8Array(5))).toEqual({ overrun: false, why: 'a match at output byte 1 reaches back 0 bytes' })
    expect(decodeLz4Block(Buffer.from([0x10, 0x61, 0x02, 0x00]), new Uint8Array(5))).toEqual({ overrun: false, why: 'a match at output byte 1 reaches back 2 bytes' })
    expect(decodeLz4Block(Buffer.from([0x00, 0xff, 0xff]), new Uint8Array(4))).toMatchObject({ overrun: false })
    expect(() => decompress('LZ4_RAW', Buffer.from([0x10, 0x61, 0x02, 0x00]), 5)).toThrow('the page at byte 7 of row group 2: its LZ4_RAW data is corrupt (a match at output byte 1 reaches back 2 bytes)')
  })

  it('refuses lengths that run past the input or the output', () => {
    // Literals said to be 15 + 200 with three bytes present.
    expect(decodeLz4Block(Buffer.from([0xf0, 200, 1, 2, 3]), new Uint8Array(215))).toMatchObject({ overrun: false, why: expect.stringMatching(/215 literals .* run past the block's end/) })
    // An extended length whose continuation bytes stop at the end of the input.
    expect(decodeLz4Block(Buffer.from([0xf0, 255, 255]), new Uint8Array(600))).toMatchObject({ overrun: false, why: expect.stringMatching(/literal length .* is cut off/) })
    expect(decodeLz4Block(Buffer.from([0x1f, 0x61, 0x01, 0x00]), new Uint8Array(100))).toMatchObject({ overrun: false, why: expect.stringMatching(/match length .* is cut off/) })
    expect(decodeLz4Block(Buffer.from([0x10, 0x61, 0x01]), new Uint8Array(5))).toMatchObject({ overrun: false, why: expect.stringMatching(/match offset .* is cut off/) })
    // Writes past the output are the decompression bomb, caught before the copy.
    expect(decodeLz4Block(Buffer.from([0x30, 1, 2, 3]), new Uint8Array(2))).toMatchObject({ overrun: true })
    expect(decodeLz4Block(Buffer.from([0x1f, 0x61, 0x01, 0x00, 0xff, 0x00]), new Uint8Array(100))).toMatchObject({ overrun: true })
  })

  it('refuses a block that makes fewer bytes than declared, and an empty one', () => {
    expect(decodeLz4Block(REFERENCE_BLOCK, new Uint8Array(REFERENCE_TEXT.length + 1))).toEqual({ overrun: false, why: `the block makes ${REFERENCE_TEXT.length} bytes where ${REFERENCE_TEXT.length + 1} are declared` })
    expect(decodeLz4Block(new Uint8Array(0), new Uint8Array(0))).toMatchObject({ overrun: false, why: 'an empty block' })
    expect(decodeLz4Block(REFERENCE_BLOCK.subarray(0, 60), new Uint8Array(REFERENCE_TEXT.length))).toMatchObject({ overrun: false })
  })

  it('refuses a page that would decompress past its declared size, and a claim LZ4 cannot make, before allocating it', () => {
    expect(() => decompress('LZ4_RAW', REFERENCE_BLOCK, REFERENCE_TEXT.length - 1)).toThrow(`the page at byte 7 of row group 2: its LZ4_RAW data decompresses to more than the ${REFERENCE_TEXT.length - 1} bytes its header declares`)
    expect(() => decompress('LZ4', hadoopFramed(REFERENCE_BLOCK, REFERENCE_TEXT.length), REFERENCE_TEXT.length - 1)).toThrow(/its LZ4 data/)
    // 2 GiB from 105 bytes: refused from the claim alone.
    expect(() => decompress('LZ4_RAW', REFERENCE_BLOCK, 2 ** 31 - 1)).toThrow(`the page at byte 7 of row group 2: its header declares ${2 ** 31 - 1} bytes, more than LZ4_RAW can make of its ${REFERENCE_BLOCK.length}`)
  })

  it('refuses a declared size that is negative or not a whole number (a v2 page\'s levels can make it so)', () => {
    expect(() => decompress('LZ4_RAW', REFERENCE_BLOCK, -3)).toThrow('the page at byte 7 of row group 2: its LZ4_RAW data is declared to decompress to -3 bytes')
    expect(() => decompress('ZSTD', zstdCompressSync(Buffer.from('x')), 0.5)).toThrow(/declared to decompress to 0.5 bytes/)
  })
})

describe('GZIP, Brotli and ZSTD pages', () => {
  const text = Buffer.from('Many a document, many a page. '.repeat(200))
  const codecs = [['GZIP', gzipSync], ['BROTLI', brotliCompressSync], ['ZSTD', zstdCompressSync]] as const

  it.each(codecs)('%s: decodes a page of exactly its declared size', (codec, compress) => {
    expect(Buffer.from(decompress(codec, compress(text), text.length))).toEqual(text)
  })

  it.each(codecs)('%s: refuses a page that decompresses past its declared size (a bomb) with a bounded output', (codec, compress) => {
    // 16 MiB of zeros in at most 16 KiB, declared as 1 KiB.
    const bomb = compress(Buffer.alloc(16 * 1024 * 1024))
    expect(bomb.length).toBeLessThan(17 * 1024)
    expect(() => decompress(codec, bomb, 1024)).toThrow(`the page at byte 7 of row group 2: its ${codec} data decompresses to more than the 1024 bytes its header declares`)
  })

  it.each(codecs)('%s: refuses a page that decompresses to fewer bytes than declared', (codec, compress) => {
    expect(() => decompress(codec, compress(text), text.length + 1)).toThrow(`the page at byte 7 of row group 2: its ${codec} data decompresses to ${text.length} bytes where its header declares ${text.length + 1}`)
  })

  it.each(codecs)('%s: refuses truncated and corrupt streams', (codec, compress) => {
    const whole = compress(text)
    const bad = /^the page at byte 7 of row group 2: its \w+ data (is corrupt \(.+\)|decompresses to \d+ bytes where its header declares \d+)$/
    expect(() => decompress(codec, whole.subarray(0, whole.length >> 1), text.length)).toThrow(bad)
    expect(() => decompress(codec, whole.subarray(0, whole.length - 3), text.length)).toThrow(bad)
    expect(() => decompress(codec, Buffer.from('not a compressed stream at all'), text.length)).toThrow(bad)
    expect(() => decompress(codec, new Uint8Array(0), text.length)).toThrow(bad)
  })

  it('names LZO as not read, with the codecs that are', () => {
    expect(() => decompress('LZO', Buffer.from([1, 2, 3]), 10)).toThrow('the page at byte 7 of row group 2 is LZO-compressed, which is not read: write the file with ZSTD, Snappy, GZIP, Brotli, LZ4_RAW or no compression')
  })

  it('reads the errors as ERR_BAD_FILE', () => {
    expect(() => decompress('ZSTD', Buffer.from('garbage'), 10)).toThrow(expect.objectContaining({ code: 'ERR_BAD_FILE' }))
    expect(() => decompress('LZ4_RAW', Buffer.from([0x10, 0x61, 0x00, 0x00]), 5)).toThrow(expect.objectContaining({ code: 'ERR_BAD_FILE' }))
  })
})
