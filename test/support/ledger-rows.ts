import { createHash } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../../coordinator/src/db/schema.ts'

const sha = (text: string): string => createHash('sha256').update(text).digest('hex')

/** A run with no rows yet, for tests that write its ledger themselves. */
export async function emptyRun (db: Kysely<Database>, name = 'ledger rows'): Promise<string> {
  const run = await db.insertInto('runs').values({ name, spec: JSON.stringify({ rounds: 1 }), created_by: null, updated_at: new Date(), latest_checkpoint: null, status: 'running' }).returning('id').executeTakeFirstOrThrow()
  return run.id
}

/**
 * Writes `count` ledger rows for each of `runIds`, interleaved (so one run's seqs skip numbers,
 * as they do in an install with several runs), in a few bulk inserts, unchained: for tests of
 * how the ledger is read and written out, not of the chain. Rows vary every field an export
 * prints: refusals with reasons a spreadsheet would run as formulas or split (quotes, commas,
 * line breaks, non-ASCII), nulls, fractions, devices and scores. `metadataBytes` pads each
 * accepted row's metadata to about that size. Returns each run's rows' seqs in order.
 */
export async function writeLedgerRows (db: Kysely<Database>, runIds: string[], count: number, o: { metadataBytes?: number, from?: Date } = {}): Promise<Map<string, number[]>> {
  const from = o.from ?? new Date('2026-03-01T00:00:00.000Z')
  const rows = []
  for (let i = 0; i < count; i++) {
    for (const [r, runId] of runIds.entries()) {
      const accepted = i % 5 !== 3
      const curve = Array.from({ length: 4 + (i % 7) }, (_, k) => 5.25 - k * 0.1 - i * 1e-4)
      const metadata = JSON.stringify({ runId, round: 1 + (i >> 4), tokens: 4096 + i, lossCurve: curve, note: 'x'.repeat(Math.max(0, (o.metadataBytes ?? 0) - 200)) })
      rows.push({
        run_id: runId,
        round: 1 + (i >> 4),
        node_id: null,
        peer_id: `12D3KooWpeer${r}n${i % 3}`,
        organization_id: null,
        assignment_id: null,
        tokens: accepted ? 4096 + i : 0,
        compute_seconds: accepted ? 0.1 + 0.2 * (i % 9) : 0,
        outcome: accepted ? 'accepted' as const : 'refused' as const,
        reason: accepted ? null : ['=HYPERLINK("http://x.test","a, b")', 'ERR_STALE: round 3 "closed"\r\nline two', '+1 über ✓', '@SUM(A1:A2)'][i % 4]!,
        metadata: accepted ? metadata : null,
        signature: accepted ? Buffer.from(sha(`sig ${runId} ${i}`), 'hex').toString('base64') : null,
        prev_hash: sha(`prev ${runId} ${i}`),
        hash: sha(`hash ${runId} ${i}`),
        created_at: new Date(from.getTime() + i * 1037),
        executor: i % 4 === 0 ? null : i % 4 === 1 ? 'torch-cuda' : 'typescript',
        devices: i % 6 === 0 ? 2 : null,
        credited_devices: i % 6 === 0 ? 1 : null,
        credited_cores: accepted ? i % 3 : null,
        score: i % 2 === 0 ? null : 0.015625 * (i % 11) - 0.05
      })
    }
  }
  for (let i = 0; i < rows.length; i += 500) await db.insertInto('ledger').values(rows.slice(i, i + 500)).execute()
  const seqs = new Map<string, number[]>()
  for (const runId of runIds) {
    seqs.set(runId, (await db.selectFrom('ledger').select('seq').where('run_id', '=', runId).orderBy('seq').execute()).map((r) => r.seq))
  }
  return seqs
}
