// "Which documents went into checkpoint N", as the coordinator serves it: built on the
// document-index worker, handed back as finished bytes so the serving thread never walks,
// copies or serialises millions of documents.
import { csvField } from '@barnraise/protocol'
import type { DocumentIndex } from '../ingest/document-index.ts'
import { traceDocuments } from './trace-documents.ts'
import type { TrainedDocument, TrainedUnit } from './trace-documents.ts'

/** What the caller knows of the checkpoint: the run, its round, the dataset's name. */
export interface ProvenanceMeta { runId: string, round: number, dataset: string | null }

/** The provenance of one checkpoint, as `documents.json` carries it. */
export interface CheckpointProvenance extends ProvenanceMeta {
  source: string
  tokenizer: string
  /** the accepted units of rounds 1..round, with the shard ranges each trained */
  units: TrainedUnit[]
  documents: TrainedDocument[]
  /** documents held out for validation, never trained on */
  heldOut: string[]
}

/** A checkpoint's provenance as bodies ready to send, and the few numbers a model card needs. */
export interface ProvenanceAnswer {
  round: number
  /** `documents.json`, UTF-8 */
  json: Uint8Array
  /** `documents.csv`, UTF-8 */
  csv: Uint8Array
  summary: {
    source: string
    heldOut: number
    /** each trained document's first round, ascending (how many were trained up to any round) */
    firstRounds: Int32Array
  }
}

/** The trained documents as CSV: locator, tokens, trained tokens, rounds and nodes (space-separated). */
export function provenanceCsv (p: CheckpointProvenance): string {
  const lines = ['source,locator,tokens,trained_tokens,rounds,nodes']
  for (const d of p.documents) lines.push([csvField(p.source), csvField(d.locator), d.tokens, d.trainedTokens, d.rounds.join(' '), d.nodes.join(' ')].join(','))
  return lines.join('\n') + '\n'
}

/** Traces `units` through `index` and renders the answer (each body in an ArrayBuffer of its own, so it can be transferred). */
export function provenanceAnswer (meta: ProvenanceMeta, units: TrainedUnit[], index: DocumentIndex): ProvenanceAnswer {
  const documents = traceDocuments(index, units)
  const p: CheckpointProvenance = { ...meta, source: index.source, tokenizer: index.tokenizer, units, documents, heldOut: index.heldOut }
  const encoder = new TextEncoder()
  const firstRounds = Int32Array.from(documents, (d) => Math.min(...d.rounds)).sort()
  return { round: meta.round, json: encoder.encode(JSON.stringify(p)), csv: encoder.encode(provenanceCsv(p)), summary: { source: index.source, heldOut: index.heldOut.length, firstRounds } }
}
