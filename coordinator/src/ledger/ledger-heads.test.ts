// A head is signed while the next round's reports keep landing: it must describe one moment of
// the ledger, or the honest ledger fails against its own head for good.
import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Kysely, KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { checkLedgerHead } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import { openTestStore } from '../../../test/support/store.ts'
import { seedLongRun } from '../../../test/support/long-run.ts'
import { readLedger } from './ledger.ts'
import { signRoundHead } from './ledger-heads.ts'

let store: Awaited<ReturnType<typeof openTestStore>>
beforeAll(async () => { store = await openTestStore('ledger-heads') })
afterAll(async () => { await store.close() })

/** Runs `between` once, right after the first query that reads the ledger returns, on another connection. */
class AfterFirstLedgerRead implements KyselyPlugin {
  readonly #reads = new WeakSet<object>()
  readonly #between: () => Promise<void>
  #done = false
  constructor (between: () => Promise<void>) { this.#between = between }
  transformQuery (args: PluginTransformQueryArgs): RootOperationNode {
    if (JSON.stringify(args.node).includes('"name":"ledger"')) this.#reads.add(args.queryId)
    return args.node
  }

  async transformResult (args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (!this.#done && this.#reads.has(args.queryId)) {
      this.#done = true
      await this.#between()
    }
    return args.result
  }
}

test('a row appended while a head is being signed does not make the head disagree with its ledger', async () => {
  const db: Kysely<Database> = store.db
  const run = await seedLongRun(db, { rounds: 1, nodes: 2, from: new Date('2026-01-01T00:00:00Z') })
  const node = await db.selectFrom('nodes').select(['id', 'peer_id', 'organization_id']).where('id', '=', run.nodeIds[0]!).executeTakeFirstOrThrow()
  // Round 2's first report commits between the signer's reads.
  const lands = async (): Promise<void> => {
    await db.insertInto('ledger').values({
      run_id: run.runId, round: 2, node_id: node.id, peer_id: node.peer_id, organization_id: node.organization_id, assignment_id: null, tokens: 100, compute_seconds: 36,
      outcome: 'refused', reason: 'late', metadata: null, signature: null, prev_hash: randomBytes(32).toString('hex'), hash: randomBytes(32).toString('hex'), executor: null
    }).execute()
  }
  const key = await generateKeyPair('Ed25519')
  const head = await signRoundHead(db.withPlugin(new AfterFirstLedgerRead(lands)), key, run.runId)
  assert.ok(head !== undefined, 'round 1 is closed and unsigned')
  const ledger = await readLedger(db, run.runId)
  assert.equal(await checkLedgerHead(run.runId, ledger, head), undefined)
  assert.equal(ledger.length, head.rows + 1, 'the row landed after the head was taken')
})
