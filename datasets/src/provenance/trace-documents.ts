// Which documents a set of accepted work units trained, from a dataset's document index.
import { documentsInRanges } from '../ingest/document-index.ts'
import type { DocumentIndex, ShardRange } from '../ingest/document-index.ts'

/** One trained document: where it is in its file, its tokens, how many were trained, in which rounds, by which nodes. */
export interface TrainedDocument { locator: string, tokens: number, trainedTokens: number, rounds: number[], nodes: string[] }

/** One accepted work unit: the round, the node (peer id) and the shard ranges it trained. */
export interface TrainedUnit { round: number, node: string, ranges: ShardRange[] }

/** The documents `units` trained, each once, in the index's (stream) order. */
export function traceDocuments (index: DocumentIndex, units: TrainedUnit[]): TrainedDocument[] {
  const byLocator = new Map<string, TrainedDocument & { order: number }>()
  const order = new Map<string, number>()
  index.documents.forEach(([locator], i) => { if (!order.has(locator)) order.set(locator, i) })
  for (const u of units) {
    for (const d of documentsInRanges(index, u.ranges)) {
      let doc = byLocator.get(d.locator)
      if (doc === undefined) {
        doc = { locator: d.locator, tokens: d.tokens, trainedTokens: 0, rounds: [], nodes: [], order: order.get(d.locator)! }
        byLocator.set(d.locator, doc)
      }
      doc.trainedTokens += d.trained
      if (!doc.rounds.includes(u.round)) doc.rounds.push(u.round)
      if (!doc.nodes.includes(u.node)) doc.nodes.push(u.node)
    }
  }
  return [...byLocator.values()].sort((a, b) => a.order - b.order).map(({ order: _, ...doc }) => doc)
}
