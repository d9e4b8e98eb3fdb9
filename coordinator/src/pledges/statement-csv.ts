import { csvField } from '@barnraise/protocol'
import type { PledgeStatement } from './pledge-statements.ts'

const COLUMNS = ['pledge_id', 'run_id', 'pledge_kind', 'ledger_seq', 'round', 'delivered_at', 'node', 'peer_id', 'organization', 'device_kind', 'device',
  'compute_seconds', 'unit', 'hours_counted', 'tokens_counted', 'share_of_row', 'checkpoint_sha256'] as const

/** A pledge statement's CSV lines, without line breaks: a header, then one per ledger row (or counted part of one). */
export function * statementCsvLines (s: PledgeStatement): Generator<string> {
  yield COLUMNS.join(',')
  for (const r of s.rows) {
    yield [
      s.pledge.id, s.pledge.runId, s.pledge.kind, r.seq, r.round, r.at, r.nodeName, r.peerId, r.organizationName, r.kind, r.device,
      r.computeSeconds, r.kind === 'gpu' ? 'gpu_hours' : 'cpu_core_hours', Number(r.hours.toFixed(9)), Number(r.tokens.toFixed(3)), Number(r.share.toFixed(9)), r.checkpoint
    ].map((v) => csvField(v)).join(',')
  }
}

/** A pledge statement as CSV: a header, then one line per ledger row (or counted part of one). */
export function statementToCsv (s: PledgeStatement): string {
  return [...statementCsvLines(s)].join('\r\n') + '\r\n'
}
