import { test } from 'vitest'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { ledgerEntryHash, ledgerGenesisHash } from '@barnraise/protocol'
import type { LedgerEntry, SignedLedgerHead } from '@barnraise/protocol'
import { startAgent, startCoordinator, tempDir } from './support/cluster.ts'
import { runCli } from './support/processes.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import { createTestDatabase } from './support/postgres.ts'

const COORDINATOR = 'coordinator/src/cli.ts'

test('the coordinator signs the ledger head each round; an operator who rewrites history is caught by a kept head', async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url }
  const coordinator = await startCoordinator({ env })
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  const agent = await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Honest Lab') })
  try {
    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ rounds: 2 }), env)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000)
    let heads: SignedLedgerHead[] = []
    for (let i = 0; i < 40 && heads.length < 2; i++) {
      heads = await getJson<SignedLedgerHead[]>(coordinator.url, `api/runs/${runId}/ledger-heads.json`)
      if (heads.length < 2) await new Promise((resolve) => setTimeout(resolve, 250))
    }
    assert.deepEqual(heads.map((h) => h.round), [1, 2], 'one signed head per closed round')
    const coordinatorPeer = coordinator.multiaddr.split('/p2p/')[1]!
    assert.ok(heads.every((h) => h.coordinator === coordinatorPeer), 'signed with the coordinator\'s own libp2p key')

    const ok = await runCli(COORDINATOR, ['ledger', 'verify', '--run', runId, '--from', coordinator.url, '--coordinator', coordinatorPeer])
    assert.equal(ok.code, 0, ok.output)
    assert.match(ok.stdout, /ledger OK: \d+ rows.*2 signed head\(s\) match \(latest round 2/)
    // A funder keeps the heads.
    const kept = join(await tempDir('heads'), 'ledger-heads.json')
    await writeFile(kept, JSON.stringify(heads))

    const entries = await getJson<LedgerEntry[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    const victim = entries.find((e) => e.outcome === 'accepted')!
    // A row's time is hashed (ledger v6): moving it back an hour, to count it toward an older
    // pledge, fails at that row even without a head.
    await db.query(`update ledger set created_at = created_at - interval '1 hour' where seq = $1`, [victim.seq])
    const moved = await runCli(COORDINATOR, ['ledger', 'verify', '--run', runId, '--from', coordinator.url])
    assert.equal(moved.code, 1, moved.output)
    assert.match(moved.stdout, new RegExp(`ledger FAILED at row seq=${victim.seq} .*hash does not match`))
    await db.query('update ledger set created_at = $1 where seq = $2', [victim.createdAt, victim.seq])

    // The operator moves the first accepted report's credit to another organization and re-chains
    // every row so the ledger is self-consistent again, then drops the heads it signed.
    const other = await db.query<{ id: string }>(`insert into organizations (name) values ('Operator Friends') returning id`)
    let prev = await ledgerGenesisHash(runId)
    for (const e of entries) {
      const fields = { ...e, prevHash: prev, organizationId: e.seq === victim.seq ? other.rows[0]!.id : e.organizationId }
      const hash = await ledgerEntryHash(fields)
      await db.query('update ledger set organization_id = $1, prev_hash = $2, hash = $3 where seq = $4', [fields.organizationId, prev, hash, e.seq])
      prev = hash
    }
    await db.query('delete from ledger_heads where run_id = $1', [runId])

    const rewritten = await runCli(COORDINATOR, ['ledger', 'verify', '--run', runId, '--from', coordinator.url])
    assert.equal(rewritten.code, 0, `without a kept head a consistent rewrite is not detectable: ${rewritten.output}`)
    const caught = await runCli(COORDINATOR, ['ledger', 'verify', '--run', runId, '--from', coordinator.url, '--head', kept])
    assert.equal(caught.code, 1, caught.output)
    assert.match(caught.stdout, /ledger FAILED against the head for round \d from .*history was rewritten/)

    // A ledger exported from the rewritten coordinator fails against the kept head offline, too.
    const exported = join(await tempDir('ledger'), 'ledger.json')
    await writeFile(exported, JSON.stringify(await getJson<LedgerEntry[]>(coordinator.url, `api/runs/${runId}/ledger.json`)))
    const offline = await runCli(COORDINATOR, ['ledger', 'verify', '--run', runId, '--from', exported, '--head', kept])
    assert.equal(offline.code, 1, offline.output)

    // A head not signed by the coordinator named is refused, as is a head file that is not one.
    const forged = join(await tempDir('forged'), 'heads.json')
    await writeFile(forged, JSON.stringify([{ ...heads[0]!, hash: 'f'.repeat(64) }]))
    const bad = await runCli(COORDINATOR, ['ledger', 'verify', '--run', runId, '--from', exported, '--head', forged])
    assert.equal(bad.code, 1, bad.output)
    assert.match(bad.stdout, /signature does not verify/)
    await writeFile(forged, '{"runId": 5}')
    const garbage = await runCli(COORDINATOR, ['ledger', 'verify', '--run', runId, '--from', exported, '--head', forged])
    assert.equal(garbage.code, 2, garbage.output)
    assert.match(garbage.output, /the ledger head: .*runId/)
  } finally {
    await db.end()
    await agent.stop()
    await coordinator.stop()
    await database.drop()
  }
})
