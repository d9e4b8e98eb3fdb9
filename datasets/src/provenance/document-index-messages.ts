// The messages between a DocumentIndexService and its worker thread.
import type { CheckedDocumentIndex, DocumentIndexExpectation } from './check-document-index.ts'
import type { ProvenanceAnswer, ProvenanceMeta } from './checkpoint-provenance.ts'
import type { TrainedUnit } from './trace-documents.ts'

export type DocumentIndexRequest =
  | { id: number, type: 'check', bytes: Uint8Array, expect: DocumentIndexExpectation }
  /** `gzipped` is sent only when the worker said it does not hold `sha256` */
  | { id: number, type: 'trace', sha256: string, gzipped?: Uint8Array, meta: ProvenanceMeta, units: TrainedUnit[] }

export type DocumentIndexReply =
  | { id: number, type: 'checked', result: CheckedDocumentIndex }
  | { id: number, type: 'traced', result: ProvenanceAnswer }
  /** the worker does not hold that index: send its bytes */
  | { id: number, type: 'miss' }
  | { id: number, type: 'error', code: string, message: string }
