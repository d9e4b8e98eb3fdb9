// Hostile Parquet files, written byte by byte: a footer, row group or page header that claims far
// more rows or bytes than the file holds must be refused from its claims, before anything that
// size is allocated or decoded.
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ByteWriter } from 'hyparquet-writer/src/bytewriter.js'
import { serializeTCompactProtocol } from 'hyparquet-writer/src/thrift.js'
import { describe, expect, it } from 'vitest'
import { wholeFile } from './file-span.ts'
import { MAX_ROW_GROUP_BYTES, parquetReader } from './parquet.ts'
import type { ReadItem } from './source-document.ts'

type Thrift = { [key: `field_${number}`]: unknown }

function thrift (data: Thrift): Buffer {
  const writer = new ByteWriter()
  serializeTCompactProtocol(writer, data)
  return Buffer.from(writer.getBuffer())
}

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }
/** PLAIN BYTE_ARRAY values: each a 4-byte length and its bytes. */
const plainStrings = (texts: string[]): Buffer => Buffer.concat(texts.flatMap((t) => [u32(Buffer.byteLength(t)), Buffer.from(t)]))
/** An unsigned LEB128 varint (RLE run headers). */
function varint (n: number): Buffer {
  const out: number[] = []
  while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  out.push(n)
  return Buffer.from(out)
}

interface Page { type?: number, uncompressed?: number, compressed?: number, values: number, body: Buffer }
const PAGE_DATA = 0
const PAGE_DICTIONARY = 2
const CODEC_UNCOMPRESSED = 0
const CODEC_SNAPPY = 1

/**
 * One string column "text" in one row group, its pages as given: what a writer would produce,
 * except that every count and size is whatever the test says.
 */
function craftedParquet (opts: { pages: Page[], rows: number, optional?: boolean, codec?: number }): Buffer {
  const chunk = Buffer.concat(opts.pages.flatMap((p) => {
    const type = p.type ?? PAGE_DATA
    const header: Thrift = { field_1: type, field_2: p.uncompressed ?? p.body.length, field_3: p.compressed ?? p.body.length }
    if (type === PAGE_DICTIONARY) header.field_7 = { field_1: p.values, field_2: 0 }
    else header.field_5 = { field_1: p.values, field_2: 0, field_3: 3, field_4: 3 }
    return [thrift(header), p.body]
  }))
  const values = opts.pages.reduce((n, p) => n + p.values, 0)
  const metadata = thrift({
    field_1: 1,
    field_2: [{ field_4: 'schema', field_5: 1 }, { field_1: 6, field_3: opts.optional === true ? 1 : 0, field_4: 'text', field_6: 0 }],
    field_3: BigInt(opts.rows),
    field_4: [{
      field_1: [{ field_2: 4n, field_3: { field_1: 6, field_2: [0, 3], field_3: ['text'], field_4: opts.codec ?? CODEC_UNCOMPRESSED, field_5: BigInt(values), field_6: BigInt(chunk.length), field_7: BigInt(chunk.length), field_9: 4n } }],
      field_2: BigInt(chunk.length),
      field_3: BigInt(opts.rows)
    }]
  })
  return Buffer.concat([Buffer.from('PAR1'), chunk, metadata, u32(metadata.length), Buffer.from('PAR1')])
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

  it('names a row group that cannot be decoded as a bad file, not an internal error', async () => {
    // The page says one value, but its bytes end inside that value's length prefix.
    const file = craftedParquet({ pages: [{ values: 1, body: Buffer.from([9, 0]) }], rows: 1 })
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^row group 0 could not be read: /) })
  })
})
