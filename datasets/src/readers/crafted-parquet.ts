// Parquet files written byte by byte for tests: what a writer would make, except where a test
// makes them lie. Not part of the package's interface (tests import this file by its path).
import { zstdCompressSync } from 'node:zlib'
import { ByteWriter } from 'hyparquet-writer/src/bytewriter.js'
import { serializeTCompactProtocol } from 'hyparquet-writer/src/thrift.js'

/** Thrift structs as hyparquet-writer's compact protocol takes them: fields by number. */
export type Thrift = { [key: `field_${number}`]: unknown }
/** A struct in Thrift's compact protocol, as Parquet's footer and page headers are written. */
export function thrift (data: Thrift): Buffer {
  const writer = new ByteWriter()
  serializeTCompactProtocol(writer, data)
  return Buffer.from(writer.getBuffer())
}
/** A little-endian uint32. */
export const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }

/**
 * A Parquet file of `groups` row groups of `rows` rows of `rowBytes` bytes of text, each group's
 * text one ZSTD page of a few KB: `shared`, every group names the one page (the reviewer's
 * 9,814-byte file that tokenized into 2 GiB); otherwise each has a copy of its own, as a writer
 * would lay it out.
 */
export function zstdParquet (opts: { groups: number, rows: number, rowBytes: number, shared: boolean }): Buffer {
  const words = 'the quick brown fox jumps over a lazy dog while seven bakers sing '
  const row = words.repeat(Math.ceil(opts.rowBytes / words.length)).slice(0, opts.rowBytes)
  const plain = Buffer.concat(Array.from({ length: opts.rows }, () => [u32(opts.rowBytes), Buffer.from(row)]).flat())
  const body = zstdCompressSync(plain)
  const chunk = Buffer.concat([thrift({ field_1: 0, field_2: plain.length, field_3: body.length, field_5: { field_1: opts.rows, field_2: 0, field_3: 3, field_4: 3 } }), body])
  const chunks = opts.shared ? 1 : opts.groups
  const group = (g: number): Thrift => {
    const at = BigInt(4 + (opts.shared ? 0 : g) * chunk.length)
    const meta = { field_1: 6, field_2: [0, 3], field_3: ['text'], field_4: 6, field_5: BigInt(opts.rows), field_6: BigInt(plain.length), field_7: BigInt(chunk.length), field_9: at }
    return { field_1: [{ field_2: at, field_3: meta }], field_2: BigInt(plain.length), field_3: BigInt(opts.rows) }
  }
  const metadata = thrift({
    field_1: 1,
    field_2: [{ field_4: 'schema', field_5: 1 }, { field_1: 6, field_3: 0, field_4: 'text', field_6: 0 }],
    field_3: BigInt(opts.groups * opts.rows),
    field_4: Array.from({ length: opts.groups }, (_, g) => group(g))
  })
  return Buffer.concat([Buffer.from('PAR1'), ...Array.from({ length: chunks }, () => chunk), metadata, u32(metadata.length), Buffer.from('PAR1')])
}

