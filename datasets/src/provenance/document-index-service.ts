// Document indexes are checked and read on one worker thread, started when first needed and
// stopped when idle, so the thread that serves rounds never parses one.
import { Worker } from 'node:worker_threads'
import { DatasetError } from '../dataset-error.ts'
import type { DatasetErrorCode } from '../dataset-error.ts'
import type { CheckedDocumentIndex, DocumentIndexExpectation } from './check-document-index.ts'
import type { DocumentIndexReply, DocumentIndexRequest } from './document-index-messages.ts'
import type { ProvenanceAnswer, ProvenanceMeta } from './checkpoint-provenance.ts'
import type { TrainedUnit } from './trace-documents.ts'

type Pending = (reply: DocumentIndexReply) => void
interface RunningWorker { thread: Worker, pending: Map<number, Pending> }
type Request = DocumentIndexRequest extends infer R ? R extends DocumentIndexRequest ? Omit<R, 'id'> : never : never

const CODES: ReadonlySet<string> = new Set<DatasetErrorCode>(['ERR_BAD_FILE', 'ERR_BAD_OPTIONS', 'ERR_TOO_FEW_DOCUMENTS', 'ERR_BAD_INDEX', 'ERR_INDEX_WORKER'])

/** Room for the largest index a URL may name (256 MiB of JSON parses to about 1.5 GB of objects). */
const WORKER_HEAP_MB = 4096

/** Checks fetched document indexes and traces trained documents, off the calling thread. */
export class DocumentIndexService {
  #worker: RunningWorker | undefined
  #nextId = 1
  #idle: NodeJS.Timeout | undefined
  readonly #idleMs: number

  /** `idleMs`: how long the worker (and the indexes it holds) outlives its last request. */
  constructor (options: { idleMs?: number } = {}) {
    this.#idleMs = options.idleMs ?? 60_000
  }

  /** Checks `bytes` against what the manifest says of them; resolves to the stored form, or rejects with ERR_BAD_INDEX and the reason. */
  async check (bytes: Uint8Array, expect: DocumentIndexExpectation): Promise<CheckedDocumentIndex> {
    const reply = await this.#send({ type: 'check', bytes, expect })
    if (reply.type !== 'checked') throw new DatasetError('ERR_INDEX_WORKER', `unexpected reply ${reply.type} to a check`)
    return reply.result
  }

  /**
   * The provenance of a checkpoint whose accepted units are `units`, from the stored (gzipped)
   * index `sha256`, as finished bodies; `load` is called only when the worker does not hold it.
   */
  async trace (sha256: string, load: () => Promise<Uint8Array>, meta: ProvenanceMeta, units: TrainedUnit[]): Promise<ProvenanceAnswer> {
    let reply = await this.#send({ type: 'trace', sha256, meta, units })
    if (reply.type === 'miss') {
      const gzipped = await load()
      reply = await this.#send({ type: 'trace', sha256, gzipped, meta, units })
    }
    if (reply.type !== 'traced') throw new DatasetError('ERR_INDEX_WORKER', `unexpected reply ${reply.type} to a trace`)
    return reply.result
  }

  /** Stops the worker now; requests in flight reject. */
  async close (): Promise<void> {
    clearTimeout(this.#idle)
    const worker = this.#worker
    this.#worker = undefined
    if (worker !== undefined) await worker.thread.terminate()
  }

  async #send (req: Request): Promise<DocumentIndexReply> {
    clearTimeout(this.#idle)
    const worker = this.#start()
    const id = this.#nextId++
    // Held while a request waits (a CLI awaiting a check must not exit), let go when idle.
    worker.thread.ref()
    const reply = await new Promise<DocumentIndexReply>((resolve) => {
      worker.pending.set(id, resolve)
      worker.thread.postMessage({ ...req, id })
    })
    if (worker.pending.size === 0 && this.#worker === worker) {
      worker.thread.unref()
      this.#idle = setTimeout(() => { void this.close() }, this.#idleMs)
      this.#idle.unref()
    }
    if (reply.type === 'error') throw new DatasetError(CODES.has(reply.code) ? reply.code as DatasetErrorCode : 'ERR_BAD_INDEX', reply.message)
    return reply
  }

  #start (): RunningWorker {
    if (this.#worker !== undefined) return this.#worker
    // A cap of its own: a worker near it is usually stopped alone (ERR_WORKER_OUT_OF_MEMORY)
    // rather than the process, though V8 does not promise that for every allocation.
    const thread = new Worker(new URL('./document-index-worker.ts', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } })
    // Each worker answers only its own requests: one that stops fails those, not its successor's.
    const worker: RunningWorker = { thread, pending: new Map() }
    thread.on('message', (reply: DocumentIndexReply) => {
      const resolve = worker.pending.get(reply.id)
      worker.pending.delete(reply.id)
      resolve?.(reply)
    })
    const fail = (message: string): void => {
      if (this.#worker === worker) this.#worker = undefined
      const pending = [...worker.pending.entries()]
      worker.pending.clear()
      for (const [id, resolve] of pending) resolve({ id, type: 'error', code: 'ERR_INDEX_WORKER', message })
    }
    thread.on('error', (err) => { fail(`the document index worker failed: ${err.message}`) })
    thread.on('exit', (code) => { fail(`the document index worker stopped (exit ${code})`) })
    this.#worker = worker
    return worker
  }
}
