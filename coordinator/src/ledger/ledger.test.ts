import { test } from 'vitest'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { sql } from 'kysely'
import { canonicalReportMetadata, isLedgerTime, ledgerEntryHash, verifyLedger } from '@barnraise/protocol'
import type { ReportMetadata } from '@barnraise/protocol'
import { createTestDatabase } from '../../../test/support/postgres.ts'
import { openDatabase } from '../db/open-database.ts'
import { loadRunDeliveries } from '../pledges/run-deliveries.ts'
import { appendLedgerEntry, ledgerToCsv, readLedger } from './ledger.ts'

for (const kind of ['pglite', 'postgres'] as const) {
  test(`${kind}: a row is hashed with the time it is stored with (ledger v6), and every reader prints that time`, async () => {
    const fresh = kind === 'postgres' ? await createTestDatabase() : undefined
    const database = await openDatabase({ dataDir: 'memory://', databaseUrl: fresh?.url })
    try {
      const db = database.db
      const runId = (await db.insertInto('runs').values({ name: 'r', spec: '{}', failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
      const key = await generateKeyPair('Ed25519')
      const peerId = peerIdFromPrivateKey(key).toString()
      const assignmentId = randomUUID()
      const meta: ReportMetadata = { runId, round: 1, assignmentId, peerId, tokens: 100, computeSeconds: 2, lossCurve: [1], codec: 'int8', payloadBytes: 4, payloadSha256: 'a'.repeat(64) }
      const before = Date.now()
      const appended = []
      for (const outcome of ['refused', 'accepted', 'refused'] as const) {
        const accepted = outcome === 'accepted'
        appended.push(await db.transaction().execute(async (trx) => await appendLedgerEntry(trx, {
          runId, round: 1, nodeId: null, peerId, organizationId: null, assignmentId: accepted ? assignmentId : null, tokens: accepted ? 100 : 0, computeSeconds: accepted ? 2 : 0,
          outcome, reason: accepted ? null : 'ERR_X: no', metadata: accepted ? new TextDecoder().decode(canonicalReportMetadata(meta)) : null,
          signature: accepted ? Buffer.from(await key.sign(canonicalReportMetadata(meta))).toString('base64') : null, executor: null, creditedCores: accepted ? 0 : null
        })))
      }
      const after = Date.now()

      const read = await readLedger(db, runId)
      assert.deepEqual(read.map((r) => r.createdAt), appended.map((r) => r.createdAt), 'the export prints the time that was hashed')
      for (const r of read) {
        assert.ok(isLedgerTime(r.createdAt), r.createdAt)
        const at = Date.parse(r.createdAt!)
        assert.ok(at >= before - 1000 && at <= after + 1000, `${r.createdAt} is when the row was written`)
        assert.equal(r.hash, await ledgerEntryHash(r))
        assert.notEqual(r.hash, await ledgerEntryHash({ ...r, createdAt: undefined }), 'hashed with its time')
      }
      assert.deepEqual(await verifyLedger(runId, read), { ok: true, rows: 3 })
      // RFC 4180 fields: quoted ones (the signed metadata) hold commas.
      const fields = (line: string): string[] => [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(?:,|$)/g)].map((m) => m[1]!)
      const csv = ledgerToCsv(read).split('\r\n')
      const column = fields(csv[0]!).indexOf('createdAt')
      assert.deepEqual(csv.slice(1, 4).map((line) => fields(line)[column]), read.map((r) => r.createdAt))
      // What pledge statements count a row by (and print with toISOString) is the same instant.
      const delivered = await loadRunDeliveries(db, runId)
      assert.deepEqual(delivered.map((d) => [d.seq, d.createdAt.toISOString()]), [[read[1]!.seq, read[1]!.createdAt]])

      // An operator moving a row's time by a millisecond breaks the row's hash.
      await sql`update ledger set created_at = created_at + interval '1 millisecond' where seq = ${read[1]!.seq}`.execute(db)
      const moved = await verifyLedger(runId, await readLedger(db, runId))
      assert.equal(!moved.ok && moved.seq, read[1]!.seq)
      assert.match(!moved.ok ? moved.reason : '', /hash does not match the row's contents and its createdAt .* \(the row was altered, or its time moved\)/)
    } finally {
      await database.close()
      await fresh?.drop()
    }
  }, 60_000)
}
