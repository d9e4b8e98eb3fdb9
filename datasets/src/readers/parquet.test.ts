// Hostile Parquet files, written byte by byte: a footer, row group or page header that claims far
// more rows or bytes than the file holds must be refused from its claims, before anything that
// size is allocated or decoded. Pages in each codec read here are read as written, and refused
// when they decompress to more or fewer bytes than their headers declare.
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliCompressSync, gzipSync, zstdCompressSync } from 'node:zlib'
import { parquetMetadata } from 'hyparquet'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { describe, expect, it } from 'vitest'
import { thrift, u32 } from './crafted-parquet.ts'
import type { Thrift } from './crafted-parquet.ts'
import { wholeFile } from './file-span.ts'
import { MAX_PARQUET_EXPANSION, MAX_ROW_GROUP_BYTES, MIN_PARQUET_TEXT_BYTES, parquetReader } from './parquet.ts'
import type { ReadItem } from './source-document.ts'

/** PLAIN BYTE_ARRAY values: each a 4-byte length and its bytes. */
const plainStrings = (texts: string[]): Buffer => Buffer.concat(texts.flatMap((t) => [u32(Buffer.byteLength(t)), Buffer.from(t)]))
/** An unsigned LEB128 varint (RLE run headers). */
function varint (n: number): Buffer {
  const out: number[] = []
  while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  out.push(n)
  return Buffer.from(out)
}

/** A page as written, except for its sizes if given; `v2Levels` makes it a v2 data page with that many bytes of definition levels; `encoding` is a v1 data page's (PLAIN unless given). */
interface Page { type?: number, uncompressed?: number, compressed?: number, values: number, body: Buffer, v2Levels?: number, encoding?: number }
const PAGE_DATA = 0
const PAGE_DICTIONARY = 2
const PAGE_DATA_V2 = 3
const CODEC_UNCOMPRESSED = 0
const CODEC_SNAPPY = 1
/** Parquet's codec numbers, for crafted files. */
const CODEC = { GZIP: 2, LZO: 3, BROTLI: 4, LZ4: 5, ZSTD: 6, LZ4_RAW: 7 } as const
const ENCODING_RLE_DICTIONARY = 8

/** A column chunk: each page behind its header. */
function craftedChunk (pages: Page[]): Buffer {
  return Buffer.concat(pages.flatMap((p) => {
    const type = p.v2Levels !== undefined ? PAGE_DATA_V2 : p.type ?? PAGE_DATA
    const header: Thrift = { field_1: type, field_2: p.uncompressed ?? p.body.length, field_3: p.compressed ?? p.body.length }
    if (type === PAGE_DICTIONARY) header.field_7 = { field_1: p.values, field_2: 0 }
    else if (type === PAGE_DATA_V2) header.field_8 = { field_1: p.values, field_2: 0, field_3: p.values, field_4: 0, field_5: p.v2Levels, field_6: 0 }
    else header.field_5 = { field_1: p.values, field_2: p.encoding ?? 0, field_3: 3, field_4: 3 }
    return [thrift(header), p.body]
  }))
}

/**
 * One string column "text" in row groups whose chunks are the given ones, laid out one after
 * another: each group names the chunk it reads (several may name one, as no writer would), its
 * start moved by `shift` bytes and its size claimed `extra` bytes larger if given.
 */
function craftedGroups (opts: { chunks: Page[][], groups: Array<{ chunk: number, rows: number, shift?: number, extra?: number }>, optional?: boolean, codec?: number }): Buffer {
  const chunks = opts.chunks.map(craftedChunk)
  const offsets: number[] = []
  let at = 4
  for (const c of chunks) { offsets.push(at); at += c.length }
  const metadata = thrift({
    field_1: 1,
    field_2: [{ field_4: 'schema', field_5: 1 }, { field_1: 6, field_3: opts.optional === true ? 1 : 0, field_4: 'text', field_6: 0 }],
    field_3: BigInt(opts.groups.reduce((n, g) => n + g.rows, 0)),
    field_4: opts.groups.map((g) => {
      const size = chunks[g.chunk]!.length + (g.extra ?? 0)
      const start = BigInt(offsets[g.chunk]! + (g.shift ?? 0))
      const values = opts.chunks[g.chunk]!.reduce((n, p) => n + p.values, 0)
      return {
        field_1: [{ field_2: start, field_3: { field_1: 6, field_2: [0, 3], field_3: ['text'], field_4: opts.codec ?? CODEC_UNCOMPRESSED, field_5: BigInt(values), field_6: BigInt(size), field_7: BigInt(size), field_9: start } }],
        field_2: BigInt(size),
        field_3: BigInt(g.rows)
      }
    })
  })
  return Buffer.concat([Buffer.from('PAR1'), ...chunks, metadata, u32(metadata.length), Buffer.from('PAR1')])
}

/**
 * One string column "text" in one row group, its pages as given: what a writer would produce,
 * except that every count and size is whatever the test says.
 */
function craftedParquet (opts: { pages: Page[], rows: number, optional?: boolean, codec?: number }): Buffer {
  return craftedGroups({ chunks: [opts.pages], groups: [{ chunk: 0, rows: opts.rows }], ...(opts.optional !== undefined ? { optional: opts.optional } : {}), ...(opts.codec !== undefined ? { codec: opts.codec } : {}) })
}

async function readAll (bytes: Buffer): Promise<ReadItem[]> {
  const path = join(await mkdtemp(join(tmpdir(), 'ds-pq-hostile-')), 'file.parquet')
  await writeFile(path, bytes)
  const reader = await parquetReader(await wholeFile(path), 'text')
  const items: ReadItem[] = []
  for await (const item of reader.items()) items.push(item)
  return items
}

describe('hostile Parquet files', () => {
  it('the crafted writer makes a file hyparquet reads as written (so the refusals below are of the claims alone)', async () => {
    const texts = ['First document.', 'Second document.']
    const items = await readAll(craftedParquet({ pages: [{ values: 2, body: plainStrings(texts) }], rows: 2 }))
    expect(items).toEqual([{ kind: 'document', locator: 'row 0', text: texts[0] }, { kind: 'document', locator: 'row 1', text: texts[1] }])
  })

  it('refuses a row group that claims billions of rows, before making a row for each', async () => {
    const file = craftedParquet({ pages: [{ values: 1, body: plainStrings(['one real row']) }], rows: 2 ** 32 - 1 })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^row group 0 claims 4294967295 rows; a row group may hold at most 8388608/) })
  })

  it('refuses a page of a few bytes whose run-length levels claim a billion nulls', async () => {
    // Definition levels: one RLE run of 2^30 zeros (nulls), 6 bytes behind a 4-byte length.
    const levels = Buffer.concat([varint(2 ** 30 * 2), Buffer.from([0])])
    const file = craftedParquet({ pages: [{ values: 2 ** 30, body: Buffer.concat([u32(levels.length), levels]) }], rows: 1, optional: true })
    expect(file.length).toBeLessThan(300)
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/claims 1073741824 values in all; a row group may hold at most 8388608/) })
  })

  it('refuses a dictionary page that claims a billion entries', async () => {
    const file = craftedParquet({ pages: [{ type: PAGE_DICTIONARY, values: 2 ** 30, body: plainStrings(['a']) }, { values: 1, body: plainStrings(['b']) }], rows: 1 })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/values in all; a row group may hold at most/) })
  })

  it('refuses Snappy pages that claim to decompress to gigabytes, before allocating them', async () => {
    // A valid Snappy stream of one literal, its header claiming 2 GiB.
    const snappy = Buffer.concat([varint(5), Buffer.from([4 << 2]), Buffer.from('hello')])
    const file = craftedParquet({ pages: [{ values: 1, uncompressed: 2 ** 31 - 1, body: snappy }], rows: 1, codec: CODEC_SNAPPY })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(new RegExp(`decompresses to more than ${MAX_ROW_GROUP_BYTES / 1024 ** 2} MiB`)) })
    // Many pages that each claim less, together more.
    const page = { values: 1, uncompressed: 600 * 1024 * 1024, body: snappy }
    await expect(readAll(craftedParquet({ pages: [page, page], rows: 2, codec: CODEC_SNAPPY }))).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/decompresses to more than/) })
  })

  it('refuses a page whose size runs past its column chunk, or is negative', async () => {
    const past = craftedParquet({ pages: [{ values: 1, compressed: 5000, body: plainStrings(['x']) }], rows: 1 })
    await expect(readAll(past)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/page at byte 0 of row group 0 claims 5000 bytes; its column chunk has \d+ left/) })
    const negative = craftedParquet({ pages: [{ values: 1, uncompressed: -7, body: plainStrings(['x']) }], rows: 1, codec: CODEC_SNAPPY })
    await expect(readAll(negative)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/page at byte 0 of row group 0 has a size of -7/) })
  })

  it('refuses row groups that share one column chunk, from the footer, before decoding any (a 10 KB file read as gigabytes)', async () => {
    // One ZSTD page of 8 MiB of text, a few KB compressed, that every row group names.
    const text = 'the quick brown fox jumps over a lazy dog while seven bakers sing '.repeat(16_000)
    const body = plainStrings(Array.from({ length: 8 }, () => text))
    const page = { values: 8, uncompressed: body.length, body: zstdCompressSync(body) }
    const shared = craftedGroups({ chunks: [[page]], groups: Array.from({ length: 32 }, () => ({ chunk: 0, rows: 8 })), codec: CODEC.ZSTD })
    expect(shared.length).toBeLessThan(20_000)
    const path = join(await mkdtemp(join(tmpdir(), 'ds-pq-shared-')), 'file.parquet')
    await writeFile(path, shared)
    // Refused as the reader opens, before a row is decoded.
    await expect(parquetReader(await wholeFile(path), 'text')).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^row group 1's "text" column chunk \(bytes 4 to \d+\) overlaps row group 0's \(bytes 4 to \d+\): each row group must have pages of its own/) })
    // Overlapping by a byte is as bad as sharing all; groups of their own are read.
    const own = craftedGroups({ chunks: [[{ values: 1, body: plainStrings(['one']) }], [{ values: 1, body: plainStrings(['two']) }]], groups: [{ chunk: 1, rows: 1 }, { chunk: 0, rows: 1 }] })
    expect((await readAll(own)).map((i) => i.kind === 'document' && i.text)).toEqual(['two', 'one'])
    // Row group 0 reads chunk 1 from a byte early, the last byte of chunk 0.
    const early = craftedGroups({ chunks: [[{ values: 1, body: plainStrings(['one']) }], [{ values: 1, body: plainStrings(['two']) }]], groups: [{ chunk: 1, rows: 1, shift: -1 }, { chunk: 0, rows: 1 }] })
    await expect(readAll(early)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^row group 1's "text" column chunk \(bytes 4 to (\d+)\) overlaps row group 0's \(bytes \d+ to \d+\)/) })
  })

  it('refuses a column chunk that runs past the file\'s data into its footer, or starts before it', async () => {
    const pages = [{ values: 1, body: plainStrings(['x']) }]
    await expect(readAll(craftedGroups({ chunks: [pages], groups: [{ chunk: 0, rows: 1, extra: 40 }] }))).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^row group 0's "text" column chunk claims bytes 4 to \d+, outside the file's data \(bytes 4 to \d+\)/) })
    await expect(readAll(craftedGroups({ chunks: [pages], groups: [{ chunk: 0, rows: 1, shift: -2 }] }))).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^row group 0's "text" column chunk claims bytes 2 to \d+, outside/) })
  })

  it('refuses a file whose row groups, each within bounds, decompress to more than 100 times its size', async () => {
    // Two groups of their own, each a ZSTD page of 33 MiB of text in a few KB: 66 MiB in all
    // passes the 64 MiB a small file may hold, and the second group is refused before decoding.
    const text = 'the quick brown fox jumps over a lazy dog while seven bakers sing '.repeat(16_000)
    const body = plainStrings(Array.from({ length: Math.ceil(33 * 1024 * 1024 / text.length) }, () => text))
    const page = { values: Math.ceil(33 * 1024 * 1024 / text.length), uncompressed: body.length, body: zstdCompressSync(body) }
    const file = craftedGroups({ chunks: [[page], [page]], groups: [{ chunk: 0, rows: page.values }, { chunk: 1, rows: page.values }], codec: CODEC.ZSTD })
    expect(file.length * MAX_PARQUET_EXPANSION).toBeLessThan(MIN_PARQUET_TEXT_BYTES)
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^the Parquet file's "text" column decompresses \(by its page headers, through row group 1\) to more than 64 MiB: at most 100 times/) })
  })

  it('refuses a dictionary of one long value that every row repeats, by the text decoded', async () => {
    // A 1 MiB dictionary entry and 300 rows naming it: 300 MiB of text from a ~1 MiB file.
    const dictionary = { type: PAGE_DICTIONARY, values: 1, body: plainStrings(['w'.repeat(1024 * 1024)]) }
    // Bit width 1, then one RLE run of 300 zeros.
    const indices = { values: 300, encoding: ENCODING_RLE_DICTIONARY, body: Buffer.concat([Buffer.from([1]), varint(300 << 1), Buffer.from([0])]) }
    const file = craftedParquet({ pages: [dictionary, indices], rows: 300 })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^the Parquet file's "text" column holds \(by its characters, through row \d+\) more text than 100 MiB: at most 100 times the file's 1.0 MiB/) })
  })

  it('names a row group that cannot be decoded as a bad file, not an internal error', async () => {
    // The page says one value, but its bytes end inside that value's length prefix.
    const file = craftedParquet({ pages: [{ values: 1, body: Buffer.from([9, 0]) }], rows: 1 })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^row group 0 could not be read: /) })
  })
})

/**
 * A greedy LZ4 block encoder (a 4-byte hash of earlier positions, no search), following the
 * format's end rules: the last 5 bytes are literals and no match starts in the last 12.
 */
function lz4Block (data: Uint8Array): Buffer {
  const out: number[] = []
  const lengthBytes = (n: number): void => { for (; n >= 255; n -= 255) out.push(255); out.push(n) }
  const sequence = (literals: Uint8Array, offset?: number, match?: number): void => {
    const m = match === undefined ? 0 : match - 4
    out.push((Math.min(literals.length, 15) << 4) | Math.min(m, 15))
    if (literals.length >= 15) lengthBytes(literals.length - 15)
    out.push(...literals)
    if (offset === undefined) return
    out.push(offset & 0xff, offset >> 8)
    if (m >= 15) lengthBytes(m - 15)
  }
  const seen = new Map<number, number>()
  let anchor = 0
  let i = 0
  while (i < data.length - 12) {
    const key = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)
    const prev = seen.get(key)
    seen.set(key, i)
    if (prev === undefined || i - prev > 65535) { i++; continue }
    let match = 4
    while (i + match < data.length - 5 && data[prev + match] === data[i + match]) match++
    sequence(data.subarray(anchor, i), i - prev, match)
    i += match
    anchor = i
  }
  sequence(data.subarray(anchor))
  return Buffer.from(out)
}

/** Hadoop's framing of the legacy LZ4 codec: one block behind its two sizes, big-endian. */
function hadoopLz4 (data: Uint8Array): Buffer {
  const block = lz4Block(data)
  const header = Buffer.alloc(8)
  header.writeUInt32BE(data.length, 0)
  header.writeUInt32BE(block.length, 4)
  return Buffer.concat([header, block])
}

type Codec = 'GZIP' | 'BROTLI' | 'ZSTD' | 'LZ4_RAW' | 'LZ4'
const COMPRESS: Record<Codec, (data: Uint8Array) => Buffer> = {
  GZIP: (data) => gzipSync(data),
  BROTLI: (data) => brotliCompressSync(data),
  ZSTD: (data) => zstdCompressSync(data),
  LZ4_RAW: lz4Block,
  LZ4: hadoopLz4
}
const CODECS = Object.keys(COMPRESS) as Codec[]

describe('compressed Parquet pages', () => {
  // Repeated documents, so the writer keeps a dictionary page as well as data pages.
  const texts = Array.from({ length: 600 }, (_, i) => `Document ${i % 90} tells of ${'fields and rivers, '.repeat((i % 9) + 1)}and sheep.`)

  it.each(CODECS)('%s: reads a file written with it (dictionary and v2 data pages, two row groups)', async (codec) => {
    const file = Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'text', data: texts, type: 'STRING' }], codec, compressors: { [codec]: COMPRESS[codec] }, rowGroupSize: 400, pageSize: 4096, statistics: false }))
    const metadata = parquetMetadata(file.buffer.slice(file.byteOffset, file.byteOffset + file.length))
    expect(metadata.row_groups.map((g) => g.columns[0]?.meta_data?.codec)).toEqual([codec, codec])
    expect(metadata.row_groups[0]?.columns[0]?.meta_data?.dictionary_page_offset).toBeDefined()
    // Compressed for real: the repeated phrase is nowhere in the file as written.
    expect(file.includes('fields and rivers, fields')).toBe(false)
    const items = await readAll(file)
    expect(items).toEqual(texts.map((text, i) => ({ kind: 'document', locator: `row ${i}`, text })))
  })

  it.each(CODECS)('%s: reads a v1 data page', async (codec) => {
    const body = plainStrings(texts.slice(0, 20))
    const items = await readAll(craftedParquet({ pages: [{ values: 20, uncompressed: body.length, body: COMPRESS[codec](body) }], rows: 20, codec: CODEC[codec] }))
    expect(items.map((i) => i.kind === 'document' ? i.text : i.reason)).toEqual(texts.slice(0, 20))
  })

  it.each(CODECS)('%s: refuses a page that decompresses past its declared size (a bomb), naming it', async (codec) => {
    const body = plainStrings(['x'.repeat(100_000)])
    const first = plainStrings(['fine'])
    const file = craftedParquet({ pages: [{ values: 1, uncompressed: first.length, body: COMPRESS[codec](first) }, { values: 1, uncompressed: 100, body: COMPRESS[codec](body) }], rows: 2, codec: CODEC[codec] })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(new RegExp(`^the page at byte [1-9]\\d* of row group 0: its ${codec} data decompresses to more than the 100 bytes its header declares$`)) })
  })

  it.each(CODECS)('%s: refuses truncated and corrupt pages', async (codec) => {
    const body = plainStrings(texts.slice(0, 20))
    const whole = COMPRESS[codec](body)
    const bad = new RegExp(`^the page at byte 0 of row group 0: its ${codec} data (is corrupt \\(.+\\)|decompresses to \\d+ bytes where its header declares ${body.length})$`)
    for (const broken of [whole.subarray(0, whole.length >> 1), whole.subarray(0, whole.length - 2), Buffer.from('these bytes were never compressed')]) {
      const file = craftedParquet({ pages: [{ values: 20, uncompressed: body.length, body: broken }], rows: 20, codec: CODEC[codec] })
      await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(bad) })
    }
  })

  it('refuses an LZ4_RAW page whose match reaches before the start of its output', async () => {
    // One literal "a", then a 4-byte match from 5 bytes back.
    const file = craftedParquet({ pages: [{ values: 1, uncompressed: 5, body: Buffer.from([0x10, 0x61, 0x05, 0x00]) }], rows: 1, codec: CODEC.LZ4_RAW })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: 'the page at byte 0 of row group 0: its LZ4_RAW data is corrupt (a match at output byte 1 reaches back 5 bytes)' })
  })

  it('refuses a v2 page whose level bytes exceed its declared size, so its data would be of negative size', async () => {
    const body = zstdCompressSync(plainStrings(['x']))
    const file = craftedParquet({ pages: [{ values: 1, uncompressed: 10, body, v2Levels: 50 }], rows: 1, codec: CODEC.ZSTD })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: 'the page at byte 0 of row group 0: its ZSTD data is declared to decompress to -40 bytes' })
  })

  it('refuses LZO pages with the codecs that are read', async () => {
    const file = craftedParquet({ pages: [{ values: 1, uncompressed: 10, body: Buffer.from([1, 2, 3]) }], rows: 1, codec: CODEC.LZO })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^the page at byte 0 of row group 0 is LZO-compressed, which is not read: write the file with ZSTD/) })
  })
})
