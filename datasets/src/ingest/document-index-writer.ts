// The document index written as documents arrive, never held whole: a file of tiny documents
// has tens of millions, and an array of [locator, start, end] tuples costs about 70 bytes of
// heap each (a 12 MiB file of three-byte paragraphs filled a 256 MB heap), plus the index
// stringified whole at the end.
import { createReadStream, createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { once } from 'node:events'
import { PassThrough, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import type { Gzip } from 'node:zlib'
import type { DocumentIndex } from './document-index.ts'

/** Documents are gzipped a block of this many characters of JSON at a time. */
const BLOCK_CHARS = 1024 * 1024

/** Counts every chunk with `take` before passing it on: a chunk `take` refuses is never written. */
function counted (take: (bytes: number, what: string) => void, what: string): Transform {
  return new Transform({
    transform (chunk: Buffer, _encoding, done) {
      try {
        take(chunk.length, what)
      } catch (err) {
        done(err as Error)
        return
      }
      done(null, chunk)
    }
  })
}

/** How `finish` writes the index: gzipped (the default) or plain JSON, and the file's mode (0o600 unless given; the umask applies). */
export interface IndexFileOptions { gzip?: boolean, mode?: number }

/**
 * Writes a document index as gzipped JSON (or plain, `IndexFileOptions`), the same bytes (once
 * gunzipped) as `JSON.stringify` of the whole index. Its documents come first, in stream order,
 * and are gzipped into a part file as they come; `finish` writes the index from its head (the
 * shards, known only at the end), that part and its tail. Every byte written to disk is counted
 * with `take` first: the part's and the index's, as both are on disk until the part is removed.
 */
export class DocumentIndexWriter {
  readonly #part: string
  readonly #take: (bytes: number, what: string) => void
  readonly #gzip: Gzip
  readonly #written: Promise<void>
  #pending = ''
  #count = 0
  #failed: unknown

  /** `part`: where the documents wait for `finish`, removed by it. */
  constructor (part: string, take: (bytes: number, what: string) => void) {
    this.#part = part
    this.#take = take
    this.#gzip = createGzip()
    this.#written = pipeline(this.#gzip, counted(take, 'the document index'), createWriteStream(part, { mode: 0o600 }))
    this.#written.catch((err: unknown) => { this.#failed ??= err })
  }

  /** Documents added so far. */
  get documents (): number { return this.#count }

  /** Adds one document; a promise only when a block is being written (await it before the next). */
  add (locator: string, start: number, end: number): Promise<void> | undefined {
    this.#pending += (this.#count === 0 ? '' : ',') + JSON.stringify([locator, start, end])
    this.#count++
    return this.#pending.length < BLOCK_CHARS ? undefined : this.#flush()
  }

  async #flush (): Promise<void> {
    if (this.#failed !== undefined) throw this.#failed
    const block = this.#pending
    this.#pending = ''
    // A refused or failed write settles `#written` (rejected) where no drain would come.
    if (!this.#gzip.write(block)) await Promise.race([once(this.#gzip, 'drain'), this.#written])
    if (this.#failed !== undefined) throw this.#failed
  }

  /** Writes the index, with `head`'s fields around the documents added, to `path` (gzipped unless `options.gzip` is false), and removes the part. */
  async finish (head: Omit<DocumentIndex, 'documents'>, path: string, options: IndexFileOptions = {}): Promise<void> {
    if (this.#pending !== '') await this.#flush()
    this.#gzip.end()
    await this.#written
    // Key for key as `JSON.stringify(index)` writes a `DocumentIndex`: documents between shards and heldOut.
    const before = `${JSON.stringify({ format: head.format, source: head.source, tokenizer: head.tokenizer, shards: head.shards }).slice(0, -1)},"documents":[`
    const after = `],"heldOut":${JSON.stringify(head.heldOut)}}`
    const part = this.#part
    async function * json (): AsyncGenerator<string | Buffer> {
      yield before
      const gunzip = createGunzip()
      const reading = pipeline(createReadStream(part), gunzip)
      // Awaited below; a failed read also ends the loop, which throws first.
      reading.catch(() => undefined)
      for await (const chunk of gunzip) yield chunk as Buffer
      await reading
      yield after
    }
    await pipeline(json, options.gzip === false ? new PassThrough() : createGzip(), counted(this.#take, 'the document index'), createWriteStream(path, { mode: options.mode ?? 0o600 }))
    await rm(part, { force: true })
  }

  /** Stops writing and removes the part: for a build that failed before `finish` (a worker's thread ends anyway; a CLI's process goes on). */
  async discard (): Promise<void> {
    this.#gzip.destroy()
    await this.#written.catch(() => undefined)
    await rm(this.#part, { force: true })
  }
}
