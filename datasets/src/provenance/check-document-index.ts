// A document index fetched from a URL is a claim: it is held to the manifest that names it.
import { gzipSync } from 'node:zlib'
import { sha256Hex } from '@barnraise/trainer'
import { DatasetError } from '../dataset-error.ts'
import { parseDocumentIndex } from '../ingest/document-index.ts'
import type { DocumentIndex } from '../ingest/document-index.ts'

/** What the manifest says the index must be. */
export interface DocumentIndexExpectation {
  /** where it came from, for messages */
  url: string
  sha256: string
  tokenizer: string
  /** the manifest's train shards, in stream order */
  shards: Array<{ sha256: string, tokens: number }>
}

/** A checked index: its source file's name, its document count and its bytes gzipped for storage. */
export interface CheckedDocumentIndex { source: string, documents: number, gzipped: Uint8Array }

/**
 * Checks an index's sha256, its format, that it describes the manifest's train shards in order
 * with the manifest's tokenizer, and that its documents are sorted, disjoint and inside the
 * stream (lookups binary-search them). Throws ERR_BAD_INDEX with the first thing wrong.
 */
export function checkDocumentIndex (bytes: Uint8Array, expect: DocumentIndexExpectation): CheckedDocumentIndex {
  const bad = (message: string): DatasetError => new DatasetError('ERR_BAD_INDEX', message)
  if (sha256Hex(bytes) !== expect.sha256) throw bad(`the document index at ${expect.url} does not have the sha256 the manifest gives`)
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    throw bad(`the document index at ${expect.url} is not JSON`)
  }
  let index: DocumentIndex
  try {
    index = parseDocumentIndex(json)
  } catch (err) {
    throw bad(`the document index at ${expect.url} is not a barnraise-documents-v1 index: ${(err as Error).message}`)
  }
  if (index.tokenizer !== expect.tokenizer) throw bad(`the document index was made with tokenizer ${index.tokenizer}, the manifest names ${expect.tokenizer}`)
  const sameShards = index.shards.length === expect.shards.length && index.shards.every((s, i) => s.sha256 === expect.shards[i]!.sha256 && s.tokens === expect.shards[i]!.tokens)
  if (!sameShards) throw bad('the document index describes other train shards than the manifest lists (each shard\'s sha256 and tokens, in order)')
  const streamTokens = index.shards.reduce((n, s) => n + s.tokens, 0)
  let previousEnd = 0
  for (const [locator, start, end] of index.documents) {
    if (start < previousEnd || end < start || end > streamTokens) throw bad(`the document index is out of order or out of range at ${JSON.stringify(locator.slice(0, 80))} [${start}, ${end}) (documents must be in stream order, disjoint, within the ${streamTokens} train tokens)`)
    previousEnd = end
  }
  // A copy with an ArrayBuffer of its own, so the worker can transfer it (a small Buffer shares Node's pool).
  return { source: index.source, documents: index.documents.length, gzipped: new Uint8Array(gzipSync(bytes)) }
}
