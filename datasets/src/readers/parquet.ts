import { parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet'
import type { AsyncBuffer, FileMetaData, RowGroup } from 'hyparquet'
import { parquetHeader } from 'hyparquet/src/column.js'
import { DatasetError } from '../dataset-error.ts'
import { pageDecompressors } from './parquet-decompressors.ts'
import type { PageNamer } from './parquet-decompressors.ts'
import type { DocumentReader, ReadItem } from './source-document.ts'
import { spanBuffer } from './file-span.ts'
import type { FileSpan } from './file-span.ts'

// Every count and size in a Parquet file is the writer's claim, and hyparquet allocates what the
// claims say (an array per row, per value, per decompressed byte) before the bytes can disagree:
// a 100-byte file claiming 2^32 rows aborts the whole process (V8's "invalid table size" is
// fatal even on a worker thread). So the claims are bounded here before hyparquet sees them.

/** Most bytes of footer metadata: real files have kilobytes to a few MiB. */
export const MAX_PARQUET_FOOTER_BYTES = 64 * 1024 * 1024
/** Most rows, and most values of the text column, one row group may hold (pyarrow writes 1 Mi rows per group). */
export const MAX_ROW_GROUP_VALUES = 8 * 1024 * 1024
/** Most bytes the text column of one row group may take, as stored and as decompressed. */
export const MAX_ROW_GROUP_BYTES = 1024 * 1024 * 1024

/**
 * Most text one Parquet file may decompress to, as a multiple of its size. Honest text columns
 * compress 3-5x with Snappy or ZSTD, 10-20x when their documents repeat boilerplate; a writer's
 * dictionary of repeated values adds a little more. Each row group is bounded alone (above), so
 * without a bound on the whole file a 10 KB file of many small groups could decode to gigabytes
 * (and tokenize into gigabytes of shards, which the ingest's byte budget then refuses, but only
 * after the work). 100x leaves honest files far inside it.
 */
export const MAX_PARQUET_EXPANSION = 100
/** The bound for a small file, whose footer and headers make its ratio meaningless: 64 MiB of text. */
export const MIN_PARQUET_TEXT_BYTES = 64 * 1024 * 1024

const MIB = 1024 * 1024
const REWRITE = 'write the file with smaller row groups (pyarrow: row_group_size=100_000)'

/**
 * Parquet, read with hyparquet one row group at a time (so memory holds one group of one
 * column): each row's `column` (a string) is a document, located by its row number. Null or
 * non-string values are bad rows.
 */
export async function parquetReader (span: FileSpan, column: string): Promise<DocumentReader> {
  const file = spanBuffer(span)
  const metadata = await readMetadata(file)
  checkTextColumn(metadata, column)
  checkChunkPlacement(metadata, column, file.byteLength)
  const maxText = Math.max(MIN_PARQUET_TEXT_BYTES, MAX_PARQUET_EXPANSION * file.byteLength)
  const tooMuch = (what: string): DatasetError => new DatasetError('ERR_BAD_FILE', `the Parquet file's "${column}" column ${what} ${(maxText / MIB).toFixed(0)} MiB: at most ${MAX_PARQUET_EXPANSION} times the file's ${(file.byteLength / MIB).toFixed(1)} MiB (or ${MIN_PARQUET_TEXT_BYTES / MIB} MiB for a small file) is read, as honest text compresses 3-20x; upload the text as JSONL or plain text instead`)
  let read = 0
  async function * items (): AsyncGenerator<ReadItem> {
    let rowStart = 0
    // The file's whole text column, by its page headers before each group is decoded and by the
    // strings decoded (a dictionary page's long value, repeated by every row, is counted each time).
    let declared = 0
    let text = 0
    for (const [g, group] of metadata.row_groups.entries()) {
      const rows = groupRows(group, g)
      const rowEnd = rowStart + rows
      const checked = await checkedChunk(file, group, column, g)
      declared += checked.decompressed
      if (declared > maxText) throw tooMuch(`decompresses (by its page headers, through row group ${g}) to more than`)
      let values: Array<Record<string, unknown>>
      try {
        // The metadata given holds this group alone: hyparquet plans every group of the footer
        // on each call, so a footer of many tiny groups would cost their count squared.
        values = await parquetReadObjects({ file: checked.file, metadata: { ...metadata, row_groups: [group], num_rows: BigInt(rows) }, columns: [column], rowStart: 0, rowEnd: rows, compressors: pageDecompressors(checked.name) })
      } catch (err) {
        // The decompressors' errors already name the page and say what is wrong with it.
        if (err instanceof DatasetError) throw err
        throw new DatasetError('ERR_BAD_FILE', `row group ${g} could not be read: ${(err as Error).message.slice(0, 200)}`)
      }
      for (const [i, row] of values.entries()) {
        const locator = `row ${rowStart + i}`
        const value = row[column]
        if (typeof value !== 'string') { yield { kind: 'bad', locator, reason: value === null || value === undefined ? `"${column}" is null` : `"${column}" is not a string` }; continue }
        text += value.length
        if (text > maxText) throw tooMuch(`holds (by its characters, through row ${rowStart + i}) more text than`)
        if (value.trim() === '') { yield { kind: 'bad', locator, reason: `"${column}" is empty` }; continue }
        yield { kind: 'document', locator, text: value }
      }
      read += Number(group.total_byte_size)
      rowStart = rowEnd
    }
  }
  const total = metadata.row_groups.reduce((n, g) => n + Number(g.total_byte_size), 0)
  return { bytesTotal: total, bytesRead: () => read, items }
}

async function readMetadata (file: AsyncBuffer): Promise<FileMetaData> {
  if (file.byteLength >= 8) {
    const tail = Buffer.from(await file.slice(file.byteLength - 8, file.byteLength))
    const length = tail.readUInt32LE(0)
    if (tail.toString('latin1', 4) === 'PAR1' && length > MAX_PARQUET_FOOTER_BYTES) {
      throw new DatasetError('ERR_BAD_FILE', `the Parquet file's metadata claims ${(length / MIB).toFixed(0)} MiB; at most ${MAX_PARQUET_FOOTER_BYTES / MIB} MiB is read: ${REWRITE}`)
    }
  }
  try {
    const metadata = await parquetMetadataAsync(file)
    parquetSchema(metadata)
    return metadata
  } catch (err) {
    throw new DatasetError('ERR_BAD_FILE', `not a Parquet file: ${(err as Error).message.slice(0, 200)}`)
  }
}

/** The text must be a top-level column of plain values: a list or struct has several chunks under its name. */
function checkTextColumn (metadata: FileMetaData, column: string): void {
  const children = parquetSchema(metadata).children
  const child = children.find((c) => c.element.name === column)
  if (child === undefined) throw new DatasetError('ERR_BAD_FILE', `the Parquet file has no column "${column}"; its columns are ${children.slice(0, 20).map((c) => c.element.name).join(', ')}`)
  if (child.children.length > 0) throw new DatasetError('ERR_BAD_FILE', `the Parquet column "${column}" is a list or struct, not a column of strings`)
}

/** Where a row group's text column chunk lies, as hyparquet places it (an offset of 0 means none). */
function chunkRange (group: RowGroup, column: string): { start: number, end: number } | undefined {
  const meta = group.columns.find((c) => c.meta_data?.path_in_schema[0] === column)?.meta_data
  if (meta === undefined) return undefined
  const start = Number(meta.dictionary_page_offset || meta.data_page_offset)
  return { start, end: start + Number(meta.total_compressed_size) }
}

/**
 * Every row group's text column chunk must lie between the leading magic and the footer, and no
 * two may share bytes: a writer gives each group its own pages, while a footer whose groups all
 * point at one highly compressed page would have it decoded once per group (a 10 KB file read as
 * gigabytes). Checked from the footer alone, before anything is decoded.
 */
function checkChunkPlacement (metadata: FileMetaData, column: string, fileBytes: number): void {
  const groups = metadata.row_groups
  const dataEnd = fileBytes - 8 - metadata.metadata_length
  const starts = new Float64Array(groups.length)
  const ends = new Float64Array(groups.length)
  for (const [g, group] of groups.entries()) {
    const range = chunkRange(group, column)
    if (range === undefined) { starts[g] = ends[g] = -1; continue } // refused by checkedChunk, naming its chunks
    const { start, end } = range
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 4 || end < start || end > dataEnd) {
      throw new DatasetError('ERR_BAD_FILE', `row group ${g}'s "${column}" column chunk claims bytes ${String(start)} to ${String(end)}, outside the file's data (bytes 4 to ${dataEnd})`)
    }
    starts[g] = start
    ends[g] = end
  }
  const order = Array.from(groups.keys()).filter((g) => ends[g]! > starts[g]!).sort((a, b) => starts[a]! - starts[b]!)
  for (let i = 1; i < order.length; i++) {
    const [a, b] = [order[i - 1]!, order[i]!]
    if (starts[b]! < ends[a]!) {
      const [first, second] = a < b ? [a, b] : [b, a]
      const bytes = (g: number): string => `bytes ${starts[g]} to ${ends[g]}`
      throw new DatasetError('ERR_BAD_FILE', `row group ${second}'s "${column}" column chunk (${bytes(second)}) overlaps row group ${first}'s (${bytes(first)}): each row group must have pages of its own, as a Parquet writer gives it`)
    }
  }
}

function groupRows (group: RowGroup, g: number): number {
  const rows = Number(group.num_rows)
  if (!Number.isSafeInteger(rows) || rows < 0 || rows > MAX_ROW_GROUP_VALUES) {
    throw new DatasetError('ERR_BAD_FILE', `row group ${g} claims ${String(group.num_rows)} rows; a row group may hold at most ${MAX_ROW_GROUP_VALUES}: ${REWRITE}`)
  }
  return rows
}

/**
 * Reads the text column's chunk of one row group and walks its page headers, refusing pages that
 * run past the chunk or whose claimed values or decompressed bytes exceed a row group's bounds;
 * hyparquet is then handed these checked bytes instead of reading the chunk again, and `name`
 * places a page's compressed bytes within them for the decompressors' errors.
 */
async function checkedChunk (file: AsyncBuffer, group: RowGroup, column: string, g: number): Promise<{ file: AsyncBuffer, name: PageNamer, decompressed: number }> {
  // hyparquet reads every chunk whose path starts with the column's name; exactly one is checked and read.
  const chunks = group.columns.filter((c) => c.meta_data?.path_in_schema[0] === column)
  const meta = chunks[0]?.meta_data
  if (chunks.length !== 1 || meta === undefined || meta.path_in_schema.length !== 1) throw new DatasetError('ERR_BAD_FILE', `row group ${g} has ${chunks.length} chunks for the column "${column}" where a column of strings has one`)
  // As hyparquet places the chunk (an offset of 0 means none).
  const start = Number(meta.dictionary_page_offset || meta.data_page_offset)
  const stored = Number(meta.total_compressed_size)
  if (!Number.isSafeInteger(start) || start < 0 || start > file.byteLength || !Number.isSafeInteger(stored) || stored < 0) {
    throw new DatasetError('ERR_BAD_FILE', `row group ${g}'s text column is placed at byte ${String(start)} with ${String(stored)} bytes, outside the file`)
  }
  if (stored > MAX_ROW_GROUP_BYTES) throw new DatasetError('ERR_BAD_FILE', `row group ${g}'s text column is ${(stored / MIB).toFixed(0)} MiB; a row group's may be at most ${MAX_ROW_GROUP_BYTES / MIB} MiB: ${REWRITE}`)
  const claimedEnd = start + stored
  const end = Math.min(claimedEnd, file.byteLength)
  const bytes = await file.slice(start, end)
  const view = new DataView(bytes)
  const reader = { view, offset: 0 }
  let values = 0
  let decompressed = 0
  // hyparquet's own loop: a page header, then its compressed bytes, to the chunk's last byte.
  while (reader.offset < view.byteLength - 1) {
    const at = reader.offset
    let header: ReturnType<typeof parquetHeader>
    try {
      header = parquetHeader(reader)
    } catch (err) {
      throw new DatasetError('ERR_BAD_FILE', `the page header at byte ${at} of row group ${g} is unreadable: ${(err as Error).message.slice(0, 200)}`)
    }
    const size = header.compressed_page_size
    const unpacked = header.uncompressed_page_size
    for (const n of [size, unpacked]) {
      if (!Number.isSafeInteger(n) || n < 0) throw new DatasetError('ERR_BAD_FILE', `the page at byte ${at} of row group ${g} has a size of ${String(n)}`)
    }
    if (size > view.byteLength - reader.offset) throw new DatasetError('ERR_BAD_FILE', `the page at byte ${at} of row group ${g} claims ${size} bytes; its column chunk has ${view.byteLength - reader.offset} left`)
    decompressed += Math.max(size, unpacked)
    if (decompressed > MAX_ROW_GROUP_BYTES) throw new DatasetError('ERR_BAD_FILE', `row group ${g}'s text column decompresses to more than ${MAX_ROW_GROUP_BYTES / MIB} MiB (by its page headers): ${REWRITE}`)
    const count = header.data_page_header?.num_values ?? header.data_page_header_v2?.num_values ?? header.dictionary_page_header?.num_values ?? 0
    if (!Number.isSafeInteger(count) || count < 0) throw new DatasetError('ERR_BAD_FILE', `the page at byte ${at} of row group ${g} claims ${String(count)} values`)
    values += count
    if (values > MAX_ROW_GROUP_VALUES) throw new DatasetError('ERR_BAD_FILE', `row group ${g}'s text column claims ${values} values in all; a row group may hold at most ${MAX_ROW_GROUP_VALUES}: ${REWRITE}`)
    reader.offset += size
  }
  const checked: AsyncBuffer = {
    byteLength: file.byteLength,
    async slice (from: number, to?: number): Promise<ArrayBuffer> {
      // hyparquet asks for the chunk exactly: it gets these bytes themselves, not a copy, so a
      // page's bytes can be placed by their offset in them.
      if (from === start && to === claimedEnd) return bytes
      if (from >= start && to !== undefined && to <= claimedEnd) return bytes.slice(from - start, to - start)
      return await file.slice(from, to)
    }
  }
  const name: PageNamer = (input) => {
    // The headers are walked again rather than kept: a chunk of empty pages could hold millions
    // (a list of them would be the allocation this file guards against), and only errors ask.
    const walk = { view, offset: 0 }
    try {
      while (input.buffer === bytes && walk.offset < view.byteLength - 1) {
        const at = walk.offset
        const size = parquetHeader(walk).compressed_page_size
        const dataStart = walk.offset
        const end = dataStart + size
        // A v2 page's compressed bytes start after its levels: within its bytes, not at their start.
        if (input.byteOffset <= end) return input.byteOffset >= dataStart ? `the page at byte ${at} of row group ${g}` : `a page of row group ${g}`
        walk.offset = end
      }
    } catch {} // the headers were read once above; a page not found is named by its row group
    return `a page of row group ${g}`
  }
  return { file: checked, name, decompressed }
}
