import type { Kysely } from 'kysely'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ledgerGenesisHash, signLedgerHead } from '@barnraise/protocol'
import type { SignedLedgerHead } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import type { ChangeFeed } from '../events/change-feed.ts'
import type { Logger } from '../log.ts'

/**
 * Signs the run's chain head for its latest closed round, once per round. Does nothing when
 * no round has closed yet or that round's head is already signed.
 */
export async function signRoundHead (db: Kysely<Database>, key: PrivateKey, runId: string): Promise<SignedLedgerHead | undefined> {
  const run = await db.selectFrom('runs').select('current_round').where('id', '=', runId).executeTakeFirst()
  const closed = await db.selectFrom('rounds').select('number').where('run_id', '=', runId).where('status', '=', 'closed')
    .orderBy('number', 'desc').limit(1).executeTakeFirst()
  if (run === undefined || closed === undefined) return undefined
  const signed = await db.selectFrom('ledger_heads').select('id').where('run_id', '=', runId).where('round', '=', closed.number).executeTakeFirst()
  if (signed !== undefined) return undefined
  // The last row and the count in one statement, so one snapshot: the next round's reports keep
  // landing, and a row committed between two queries made a head whose count its row never had.
  const last = await db.selectFrom('ledger').select(['seq', 'hash']).select((eb) => eb.fn.countAll<string | number>().over().as('n'))
    .where('run_id', '=', runId).orderBy('seq', 'desc').limit(1).executeTakeFirst()
  const head = await signLedgerHead(key, {
    runId,
    round: closed.number,
    seq: last?.seq ?? 0,
    rows: Number(last?.n ?? 0),
    hash: last?.hash ?? await ledgerGenesisHash(runId),
    signedAt: new Date().toISOString(),
    coordinator: peerIdFromPrivateKey(key).toString()
  })
  await db.insertInto('ledger_heads').values({
    run_id: head.runId, round: head.round, seq: head.seq, rows: head.rows, hash: head.hash,
    signed_at: head.signedAt, coordinator: head.coordinator, signature: head.signature
  }).onConflict((oc) => oc.columns(['run_id', 'round']).doNothing()).execute()
  return head
}

/** Every head signed for a run, oldest first, as published at `/api/runs/:id/ledger-heads.json`. */
export async function readLedgerHeads (db: Kysely<Database>, runId: string): Promise<SignedLedgerHead[]> {
  const rows = await db.selectFrom('ledger_heads').selectAll().where('run_id', '=', runId).orderBy('round').execute()
  return rows.map((r) => ({
    runId: r.run_id, round: r.round, seq: r.seq, rows: r.rows, hash: r.hash, signedAt: r.signed_at, coordinator: r.coordinator, signature: r.signature
  }))
}

/**
 * Signs each run's head as its rounds close. It follows the change feed rather than hooking
 * the round engine: every round close publishes the run, and signing is idempotent per round,
 * so a missed or repeated event costs nothing; at start it catches up on every run. Runs are
 * signed one at a time.
 */
export function startLedgerHeadSigner (options: { db: Kysely<Database>, key: PrivateKey, changes: ChangeFeed, log: Logger }): () => Promise<void> {
  const log = options.log.child('ledger-heads')
  const controller = new AbortController()
  let chain: Promise<void> = Promise.resolve()
  const sign = (runId: string): void => {
    chain = chain.then(async () => {
      const head = await signRoundHead(options.db, options.key, runId)
      if (head !== undefined) log.info('ledger head signed', { runId, round: head.round, seq: head.seq })
    }).catch((err: unknown) => { log.error('could not sign a ledger head', { runId, err }) })
  }
  const loop = (async () => {
    // Catch up on rounds that closed while no signer ran (a crash between close and signing).
    try {
      for (const run of await options.db.selectFrom('runs').select('id').where('current_round', '>', 0).execute()) sign(run.id)
    } catch (err) {
      log.error('could not list runs to sign', { err })
    }
    try {
      for await (const event of options.changes.watch(controller.signal)) {
        if (event.topic === 'runs' && event.runId !== undefined) sign(event.runId)
      }
    } catch (err) {
      if (!controller.signal.aborted) log.error('ledger head signer stopped', { err })
    }
  })()
  return async () => {
    controller.abort()
    await loop
    await chain
  }
}
