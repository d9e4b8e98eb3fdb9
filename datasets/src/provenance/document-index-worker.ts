// Worker thread body: parsing and checking an index of millions of documents takes seconds that
// must not stall the coordinator's rounds. Requests are handled one at a time, in order.
import { parentPort } from 'node:worker_threads'
import { gunzipSync } from 'node:zlib'
import { parseDocumentIndex } from '../ingest/document-index.ts'
import type { DocumentIndex } from '../ingest/document-index.ts'
import { checkDocumentIndex } from './check-document-index.ts'
import type { DocumentIndexReply, DocumentIndexRequest } from './document-index-messages.ts'
import { provenanceAnswer } from './checkpoint-provenance.ts'

/** Parsed indexes by sha256 of their stored (gzipped) bytes; a parsed index can be gigabytes of objects, so only two. */
const held = new Map<string, DocumentIndex>()
const KEEP = 2

function indexFor (sha256: string, gzipped: Uint8Array | undefined): DocumentIndex | undefined {
  const cached = held.get(sha256)
  if (cached !== undefined) {
    held.delete(sha256)
    held.set(sha256, cached)
    return cached
  }
  if (gzipped === undefined) return undefined
  const index = parseDocumentIndex(JSON.parse(gunzipSync(gzipped).toString('utf8')))
  if (held.size >= KEEP) held.delete(held.keys().next().value!)
  held.set(sha256, index)
  return index
}

function handle (req: DocumentIndexRequest): DocumentIndexReply {
  if (req.type === 'check') return { id: req.id, type: 'checked', result: checkDocumentIndex(req.bytes, req.expect) }
  const index = indexFor(req.sha256, req.gzipped)
  if (index === undefined) return { id: req.id, type: 'miss' }
  return { id: req.id, type: 'traced', result: provenanceAnswer(req.meta, req.units, index) }
}

parentPort!.on('message', (req: DocumentIndexRequest) => {
  let reply: DocumentIndexReply
  try {
    reply = handle(req)
  } catch (err) {
    const e = err as { code?: unknown, message?: unknown }
    reply = { id: req.id, type: 'error', code: typeof e.code === 'string' ? e.code : 'ERR_BAD_INDEX', message: String(e.message ?? err) }
  }
  // The large parts move, not copied: the caller's thread only receives them.
  const transfer = reply.type === 'checked'
    ? [reply.result.gzipped.buffer as ArrayBuffer]
    : reply.type === 'traced' ? [reply.result.json.buffer, reply.result.csv.buffer, reply.result.summary.firstRounds.buffer] as ArrayBuffer[] : []
  parentPort!.postMessage(reply, transfer)
})
