// Datasets as organizers bring them: a file uploaded in resumable pieces, then tokenized on a
// worker thread into stored shards plus a document index. One dataset tokenizes at a time.
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'
import type { Readable } from 'node:stream'
import type { Kysely, Selectable } from 'kysely'
import { UPLOAD_BUILD_DEFAULTS, ingestInWorker } from '@barnraise/datasets'
import type { BuildProgress, DatasetFormat } from '@barnraise/datasets'
import type { Database, DatasetsTable } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import { CoordinatorError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { ChangeFeed } from '../events/change-feed.ts'
import { loadTokenizer } from './run-tokenizers.ts'
import { UPLOAD_ABANDONED_AFTER_HOURS, UPLOAD_FIRST_STRETCH_MS, UPLOAD_HOLD_MS, UPLOAD_PACE_BYTES_PER_S, assertDataRoom, dataAmount, dataRoom, holdsWholeFile, reserveDataRoom, withDataQuota } from './data-storage.ts'
import type { DataQuota } from './data-storage.ts'

/** Largest file one dataset may be (the staging disk is the real bound; this stops absurd claims). */
export const MAX_DATASET_FILE_BYTES = 256 * 1024 ** 3

/** Why a piece of a slow upload needs room of its own. */
function slowPiece (bytes: number): string {
  return `this upload is slow (under ${UPLOAD_PACE_BYTES_PER_S / 1024} KiB/s on average since it was announced, after its first ${UPLOAD_FIRST_STRETCH_MS / 60_000} minutes), so it holds no room for the rest of its file and carries on only while there is room, piece by piece; this piece is ${bytes < 1024 ? `${bytes} bytes` : dataAmount(bytes)}`
}

/** What a refused uploader can do: the bytes kept wait for a day. */
function resumeLater (at: number): string {
  return `the upload stays at byte ${at} for ${UPLOAD_ABANDONED_AFTER_HOURS} hours after its last piece: resume it later, once other uploads have finished or failed, or ask the operator for room`
}

/** Largest piece one upload request may carry. */
export const MAX_UPLOAD_CHUNK_BYTES = 64 * 1024 * 1024

const MIB = 1024 * 1024

export interface NewDataset {
  name: string
  format: DatasetFormat
  field: string | null
  tokenizer: string
  fileName: string
  fileBytes: number
}

/** A dataset as the API shows it. */
export type DatasetView = ReturnType<typeof datasetView>

/** The columns of a dataset row a page needs (never the staging path). */
export function datasetView (row: Selectable<DatasetsTable>) {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    format: row.format,
    field: row.field,
    tokenizer: row.tokenizer,
    fileName: row.file_name,
    fileBytes: row.file_bytes,
    receivedBytes: row.received_bytes,
    readBytes: row.read_bytes,
    documents: row.documents,
    badRows: row.bad_rows,
    badRowExamples: row.bad_row_examples,
    trainTokens: row.train_tokens,
    validationTokens: row.validation_tokens,
    shards: row.train_shards.length,
    error: row.error,
    createdAt: row.created_at.toISOString()
  }
}

/**
 * What a run's public page shows of the dataset it waits for: its progress, not its uploader's
 * details (its bad rows' text, its errors, how it is read).
 */
export function awaitedDatasetView (row: Selectable<DatasetsTable>) {
  const { name, status, tokenizer, fileName, fileBytes, receivedBytes, readBytes, documents, badRows, trainTokens } = datasetView(row)
  return { name, status, tokenizer, fileName, fileBytes, receivedBytes, readBytes, documents, badRows, trainTokens }
}

export interface DatasetLibraryDeps {
  db: Kysely<Database>
  blobs: BlobStore
  log: Logger
  changes: ChangeFeed
  /** where uploads are staged until tokenized */
  stagingDir: string
  /** room for uploaded data, the install's and one account's (`InstallLimits` is one) */
  quota: DataQuota
  /** A dataset became ready or failed: runs launched on it before it was tokenized go on (runs/awaiting-data.ts). */
  onSettled?: (datasetId: string) => Promise<void>
}

/** Uploads, tokenizing and the dataset rows. */
export class DatasetLibrary {
  readonly #deps: DatasetLibraryDeps
  readonly #writing = new Set<string>()
  #queue: Promise<void> = Promise.resolve()
  readonly #stopping = new AbortController()

  constructor (deps: DatasetLibraryDeps) {
    this.#deps = deps
  }

  #staged (id: string): string { return join(this.#deps.stagingDir, id) }

  /** Records a dataset about to be uploaded, after checking its tokenizer and size. */
  async create (input: NewDataset, userId: string): Promise<DatasetView> {
    if (!Number.isSafeInteger(input.fileBytes) || input.fileBytes < 1 || input.fileBytes > MAX_DATASET_FILE_BYTES) throw new CoordinatorError('ERR_INVALID_INPUT', `the file must be 1 byte to ${MAX_DATASET_FILE_BYTES / 1024 ** 3} GiB`)
    if (input.format !== 'text' && (input.field === null || input.field.trim() === '')) throw new CoordinatorError('ERR_INVALID_INPUT', `say which ${input.format === 'jsonl' ? 'field' : 'column'} holds the text`)
    await loadTokenizer(this.#deps, input.tokenizer)
    await this.#expireAbandoned()
    // A moving upload holds room for its whole file, so announced uploads cannot fill the disk
    // and one that keeps sending is sure to fit; a stalled one holds only what it received, for
    // others: the asker's own count whole, so re-announcing each hour takes nothing more.
    const row = await withDataQuota(this.#deps.db, async () => {
      await assertDataRoom(this.#deps.db, this.#deps.quota, { userId, bytes: input.fileBytes, what: `the file is ${dataAmount(input.fileBytes)}` })
      // Both times from this clock, which `holdsWholeFile` compares them with.
      const now = new Date()
      return await this.#deps.db.insertInto('datasets').values({
        name: input.name, created_by: userId, status: 'uploading', format: input.format, field: input.format === 'text' ? null : input.field,
        tokenizer: input.tokenizer, file_name: input.fileName, file_bytes: input.fileBytes, created_at: now, updated_at: now
      }).returningAll().executeTakeFirstOrThrow()
    })
    await mkdir(this.#deps.stagingDir, { recursive: true, mode: 0o700 })
    await rm(this.#staged(row.id), { force: true })
    this.#deps.changes.publish('datasets')
    return datasetView(row)
  }

  /** One dataset, if `userId` may see it (its uploader; admins see all). */
  async get (id: string, viewer: { id: string, admin: boolean }): Promise<DatasetView> {
    const row = await this.#deps.db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirst()
    if (row === undefined || (!viewer.admin && row.created_by !== viewer.id)) throw new CoordinatorError('ERR_NOT_FOUND', `no dataset ${id}`)
    return datasetView(row)
  }

  /** The viewer's datasets, newest first. */
  async list (viewer: { id: string }): Promise<DatasetView[]> {
    const rows = await this.#deps.db.selectFrom('datasets').selectAll().where('created_by', '=', viewer.id).orderBy('created_at', 'desc').limit(200).execute()
    return rows.map(datasetView)
  }

  /**
   * Appends `body` (bytes start..start+length of the file) to a dataset's upload. `start` must be
   * where the upload stands (a resuming client reads `receivedBytes` first); a piece that fails
   * halfway is cut off again, so the upload stays where it was. A piece of an upload that paused
   * an hour first takes room for the rest of its file again; one of an upload too slow to hold
   * its file needs room for itself. Either is refused (`ERR_QUOTA_EXCEEDED`, nothing changed)
   * when others took that room meanwhile.
   */
  async append (id: string, userId: string, piece: { start: number, length: number, total: number }, body: Readable): Promise<DatasetView> {
    const { db } = this.#deps
    const row = await db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirst()
    if (row === undefined || row.created_by !== userId) throw new CoordinatorError('ERR_NOT_FOUND', `no dataset ${id} of yours`)
    if (row.status !== 'uploading') throw new CoordinatorError('ERR_CONFLICT', `the dataset is ${row.status}; its upload is finished`)
    if (piece.total !== row.file_bytes) throw new CoordinatorError('ERR_INVALID_INPUT', `the file was announced as ${row.file_bytes} bytes, not ${piece.total}`)
    if (piece.start !== row.received_bytes) throw new CoordinatorError('ERR_CONFLICT', `the upload stands at byte ${row.received_bytes}; send from there`)
    if (piece.length < 1 || piece.length > MAX_UPLOAD_CHUNK_BYTES || piece.start + piece.length > row.file_bytes) throw new CoordinatorError('ERR_INVALID_INPUT', `a piece is 1 byte to ${MAX_UPLOAD_CHUNK_BYTES / MIB} MiB and ends within the file`)
    if (this.#writing.has(id)) throw new CoordinatorError('ERR_BUSY', 'another piece of this upload is being written; send one piece at a time')
    this.#writing.add(id)
    const path = this.#staged(id)
    try {
      // Read again now that the upload is ours: a piece that finished between the read above and
      // the claim (a pooled Postgres runs both at once) moved it on, and this one would append
      // at a stale offset.
      const now = await db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
      if (now.status !== 'uploading' || now.received_bytes !== row.received_bytes) throw new CoordinatorError('ERR_CONFLICT', `the upload stands at byte ${now.received_bytes}; send from there`)
      if (!holdsWholeFile(now, Date.now())) await this.#holdAgain(id, userId, piece.length)
      let seen = 0
      const counter = new Transform({
        transform (chunk: Buffer, _enc, done) {
          seen += chunk.length
          if (seen > piece.length) { done(new CoordinatorError('ERR_INVALID_INPUT', `the piece holds more than the ${piece.length} bytes it announced`)); return }
          done(null, chunk)
        }
      })
      let updated: Selectable<DatasetsTable>
      try {
        await pipeline(body, counter, createWriteStream(path, { flags: 'a', mode: 0o600 }))
        if (seen !== piece.length) throw new CoordinatorError('ERR_INVALID_INPUT', `the piece ended after ${seen} of its ${piece.length} bytes`)
        const onDisk = (await stat(path)).size
        if (onDisk !== row.received_bytes + seen) throw new Error(`staged upload ${id} is ${onDisk} bytes, expected ${row.received_bytes + seen}`)
        updated = await this.#received(id, userId, seen)
      } catch (err) {
        await truncate(path, row.received_bytes).catch(() => {})
        throw err
      }
      const done = updated.status === 'tokenizing'
      await this.#changed(id)
      if (done) this.#enqueue(id)
      return datasetView(updated)
    } finally {
      this.#writing.delete(id)
    }
  }

  /**
   * Readies a piece of an upload that does not hold its whole file, inside the quota's turn. One
   * that only paused (its pace is fine) takes room for the rest of its file again, refused when
   * others took it meanwhile. One too slow to hold it (`UPLOAD_PACE_BYTES_PER_S`) holds nothing
   * more: this piece must fit now, so a refused client stops before sending it, and is checked
   * for sure at its end (`#received`), when pieces to other slow uploads may have taken the room.
   */
  async #holdAgain (id: string, userId: string, length: number): Promise<void> {
    const { db } = this.#deps
    await withDataQuota(db, async () => {
      const row = await db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
      const at = Date.now()
      if (holdsWholeFile(row, at)) return
      if (!holdsWholeFile({ ...row, updated_at: new Date(at) }, at)) {
        await assertDataRoom(db, this.#deps.quota, { userId, bytes: length, asking: id, what: slowPiece(length), advice: resumeLater(row.received_bytes) })
        return
      }
      // Its received bytes are counted already (as a stalled upload's); the rest must fit.
      await assertDataRoom(db, this.#deps.quota, {
        userId,
        bytes: row.file_bytes - row.received_bytes,
        asking: id,
        what: `this upload had no piece for ${UPLOAD_HOLD_MS / 3600_000} hour, so it held only the ${dataAmount(row.received_bytes)} it has received, and the rest of its file is ${dataAmount(row.file_bytes - row.received_bytes)}`,
        advice: resumeLater(row.received_bytes)
      })
      await db.updateTable('datasets').set({ updated_at: new Date(at) }).where('id', '=', id).execute()
    })
  }

  /**
   * Records `seen` more bytes received, inside the quota's turn. An upload that did not hold its
   * whole file before this piece (it stalled, or was slow all along) must find room for it still
   * there: for the rest of its file when the piece makes it hold it again, else for the piece.
   * Refused, the caller cuts the piece off again and nothing changes.
   */
  async #received (id: string, userId: string, seen: number): Promise<Selectable<DatasetsTable>> {
    const { db } = this.#deps
    return await withDataQuota(db, async () => {
      const row = await db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
      const at = Date.now()
      const received = row.received_bytes + seen
      const status = received === row.file_bytes ? 'tokenizing' as const : 'uploading' as const
      const after = { ...row, received_bytes: received, status, updated_at: new Date(at) }
      if (!holdsWholeFile(row, at)) {
        const rest = row.file_bytes - row.received_bytes
        // This piece's bytes are not counted yet: they are part of what must fit.
        await assertDataRoom(db, this.#deps.quota, holdsWholeFile(after, at)
          ? {
              userId,
              bytes: rest,
              asking: id,
              what: `this upload stalled (no piece for ${UPLOAD_HOLD_MS / 3600_000} hour, or under ${UPLOAD_PACE_BYTES_PER_S / 1024} KiB/s on average) and held only the ${dataAmount(row.received_bytes)} it had received, and with this piece it holds its whole file again: the rest is ${dataAmount(rest)}`,
              advice: resumeLater(row.received_bytes)
            }
          : { userId, bytes: seen, asking: id, what: slowPiece(seen), advice: resumeLater(row.received_bytes) })
      }
      return await db.updateTable('datasets').set({ received_bytes: received, status, updated_at: after.updated_at })
        .where('id', '=', id).returningAll().executeTakeFirstOrThrow()
    })
  }

  /** Uploads untouched for a day are failed and their staged bytes deleted. */
  async #expireAbandoned (): Promise<void> {
    const stale = await this.#deps.db.updateTable('datasets').set({ status: 'failed', error: `the upload stopped for more than ${UPLOAD_ABANDONED_AFTER_HOURS} hours and was abandoned; upload the file again`, updated_at: new Date() })
      .where('status', '=', 'uploading').where('updated_at', '<', new Date(Date.now() - UPLOAD_ABANDONED_AFTER_HOURS * 3600_000)).returning('id').execute()
    for (const r of stale) {
      await rm(this.#staged(r.id), { force: true })
      await this.#settled(r.id)
    }
  }

  /** Tokenizes datasets a stopped coordinator left half done. */
  async resume (): Promise<void> {
    const rows = await this.#deps.db.selectFrom('datasets').select('id').where('status', '=', 'tokenizing').orderBy('updated_at').execute()
    for (const r of rows) this.#enqueue(r.id)
  }

  /** Waits for the tokenizing queue to drain (tests, shutdown). */
  async idle (): Promise<void> { await this.#queue }

  /**
   * Stops tokenizing: the worker is terminated (it would keep the process alive for as long as
   * a large file takes) and its dataset stays `tokenizing`, for `resume` after a restart.
   */
  async stop (): Promise<void> {
    this.#stopping.abort(new Error('the coordinator is stopping'))
    await this.#queue
  }

  #enqueue (id: string): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#stopping.signal.aborted) return
      try {
        await this.#tokenize(id)
      } catch (err) {
        if (this.#stopping.signal.aborted) return
        const message = (err as Error).message
        this.#deps.log.warn('dataset tokenizing failed', { dataset: id, err })
        await this.#deps.db.updateTable('datasets').set({ status: 'failed', error: message.slice(0, 2000), updated_at: new Date() }).where('id', '=', id).execute()
        await rm(this.#staged(id), { force: true })
        this.#deps.changes.publish('datasets')
      }
      await this.#settled(id)
    })
  }

  /**
   * A dataset's row moved: pages showing datasets hear of it, and so do the pages of runs
   * launched on it before it was tokenized, which show its progress.
   */
  async #changed (id: string): Promise<void> {
    this.#deps.changes.publish('datasets')
    const waiting = await this.#deps.db.selectFrom('runs').select('id').where('awaiting_dataset', '=', id).execute()
    for (const r of waiting) this.#deps.changes.publish('runs', r.id)
  }

  /** Tells the runs waiting on a dataset that it settled; their failure is logged, never the queue's. */
  async #settled (id: string): Promise<void> {
    await this.#deps.onSettled?.(id).catch((err: unknown) => { this.#deps.log.error('runs waiting on a dataset were not settled', { dataset: id, err }) })
  }

  async #tokenize (id: string): Promise<void> {
    const { db, blobs, log } = this.#deps
    const row = await db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
    const tokenizer = row.tokenizer.startsWith('sha256:') ? { file: await this.#tokenizerFile(row.tokenizer) } : { catalog: row.tokenizer }
    // The worker writes no more than the room this dataset has now (its own file's room counts,
    // as the shards replace it); its shards are checked again against the room left when they
    // are stored below, as others may have taken some meanwhile. Without the bound, a file that
    // tokenizes into gigabytes (a Parquet decompression bomb) would fill the staging disk first.
    const room = await withDataQuota(db, async () => await dataRoom(db, this.#deps.quota, { userId: row.created_by, except: id }))
    const budget = Number.isFinite(room.bytes) ? { bytes: room.bytes, limit: room.limit, advice: 'upload a smaller part of the file, or ask the operator for room' } : null
    const outDir = await mkdtemp(join(this.#deps.stagingDir, `${id}-shards-`))
    const started = Date.now()
    try {
      let lastWrite = 0
      // Progress writes go one after another, and all land before the final one.
      let progressWrites: Promise<void> = Promise.resolve()
      const result = await ingestInWorker({
        path: this.#staged(id), format: row.format, field: row.field, source: row.file_name, tokenizer, outDir, ...UPLOAD_BUILD_DEFAULTS, budget
      }, (p: BuildProgress) => {
        if (this.#stopping.signal.aborted) return
        const now = Date.now()
        if (now - lastWrite < 1000) return
        lastWrite = now
        progressWrites = progressWrites.then(async () => {
          await db.updateTable('datasets').set({ read_bytes: Math.min(p.bytesRead, row.file_bytes), documents: p.documents, bad_rows: p.badRows, train_tokens: p.trainTokens, validation_tokens: p.validationTokens, updated_at: new Date() })
            .where('id', '=', id).execute()
          await this.#changed(id)
        }).catch((err: unknown) => { log.warn('dataset progress not saved', { dataset: id, err }) })
      }, this.#stopping.signal)
      await progressWrites
      this.#stopping.signal.throwIfAborted()
      const indexBytes = await readFile(result.indexFile)
      const newBytes = [...result.train, result.validation].reduce((n, s) => n + s.bytes, 0) + indexBytes.byteLength
      // The check and a reservation happen together; the stores (minutes for a large dataset)
      // and the status flip follow outside the lock, the room held for them until they are done.
      // Beside the others, not its own room: that was held for its file, and the shards replace it.
      const release = await withDataQuota(db, async () => {
        await assertDataRoom(db, this.#deps.quota, { userId: row.created_by, bytes: newBytes, except: id, what: `this dataset makes ${dataAmount(newBytes)} of shards and index` })
        return reserveDataRoom(db, newBytes, row.created_by)
      })
      try {
        const meta = { vocabSize: result.train[0]!.vocabSize, tokenizer: row.tokenizer, dataset: row.name, datasetId: id, uploadedBy: row.created_by }
        for (const s of result.train) await storeBlob(db, blobs, await readFile(join(outDir, s.sha256)), 'shard', { ...meta, tokens: s.tokens })
        await storeBlob(db, blobs, await readFile(join(outDir, result.validation.sha256)), 'shard', { ...meta, tokens: result.validation.tokens, split: 'validation' })
        const index = await storeBlob(db, blobs, indexBytes, 'documents', { datasetId: id, documents: result.indexDocuments, uploadedBy: row.created_by })
        await db.updateTable('datasets').set({
          status: 'ready',
          read_bytes: row.file_bytes,
          documents: result.documents,
          bad_rows: result.badRows,
          bad_row_examples: JSON.stringify(result.badRowExamples),
          train_tokens: result.trainTokens,
          validation_tokens: result.validationTokens,
          train_shards: JSON.stringify(result.train.map((s) => ({ sha256: s.sha256, tokens: s.tokens }))),
          validation_shard: result.validation.sha256,
          document_index: index,
          error: null,
          updated_at: new Date()
        }).where('id', '=', id).execute()
      } finally {
        release()
      }
      log.info('dataset tokenized', { dataset: id, documents: result.documents, badRows: result.badRows, trainTokens: result.trainTokens, seconds: (Date.now() - started) / 1000 })
      await rm(this.#staged(id), { force: true })
      this.#deps.changes.publish('datasets')
    } finally {
      await rm(outDir, { recursive: true, force: true })
    }
  }

  /** Writes an uploaded tokenizer's blob where the worker can read it. */
  async #tokenizerFile (name: string): Promise<string> {
    const sha = name.slice('sha256:'.length)
    const row = await this.#deps.db.selectFrom('blobs').select('kind').where('sha256', '=', sha).executeTakeFirst()
    if (row?.kind !== 'tokenizer') throw new CoordinatorError('ERR_NOT_FOUND', `no uploaded tokenizer ${name}`)
    const path = join(this.#deps.stagingDir, `tokenizer-${sha}.json`)
    await writeFile(path, await this.#deps.blobs.get(sha))
    return path
  }
}
