import { createHash, randomUUID } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import type { Kysely } from 'kysely'
import { canonicalReportMetadata, ledgerEntryHash, ledgerGenesisHash } from '@barnraise/protocol'
import type { HardwareProfile, LedgerEntryFields, ReportMetadata } from '@barnraise/protocol'
import type { Database } from '@barnraise/coordinator'

export interface SeededNode { id: string, peerId: string, organizationId: string, name: string, key: PrivateKey }

const sha = (text: string): string => createHash('sha256').update(text).digest('hex')

/**
 * Writes a run's history straight into the database — nodes, rounds with their checkpoints,
 * accepted reports signed by the nodes' own keys and hash-chained like real ones — so tests of
 * what is computed from the ledger (statements, charts) need no training. Times are explicit.
 */
export class LedgerSeeder {
  readonly #db: Kysely<Database>
  readonly #runId: string
  #tokensSeen = 0

  constructor (db: Kysely<Database>, runId: string) {
    this.#db = db
    this.#runId = runId
  }

  /** An enrolled node of `organization` (created if new) claiming `gpus` GPUs and `cpuCores` cores. */
  async node (o: { organization: string, name: string, gpus?: number, cpuCores?: number }): Promise<SeededNode> {
    await this.#db.insertInto('organizations').values({ name: o.organization }).onConflict((oc) => oc.column('name').doNothing()).execute()
    const org = await this.#db.selectFrom('organizations').select('id').where('name', '=', o.organization).executeTakeFirstOrThrow()
    const key = await generateKeyPair('Ed25519')
    const hardware: HardwareProfile = {
      hostname: o.name, platform: 'linux', arch: 'x64', cpuModel: 'Test CPU', cpuCores: o.cpuCores ?? 8, memoryBytes: 2 ** 34,
      gpus: Array.from({ length: o.gpus ?? 0 }, () => ({ name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81_559 }))
    }
    const row = await this.#db.insertInto('nodes').values({
      peer_id: key.publicKey.toString(), organization_id: org.id, name: o.name, hardware: JSON.stringify(hardware), agent_version: 'seed', first_seen_at: new Date(), last_seen_at: new Date()
    }).returning('id').executeTakeFirstOrThrow()
    return { id: row.id, peerId: key.publicKey.toString(), organizationId: org.id, name: o.name, key }
  }

  /** A round: closed (with a checkpoint row, as the engine writes one) when `closedAt` is given, else open. */
  async round (number: number, o: { openedAt: Date, closedAt?: Date, tokens?: number, trainLoss?: number, valLoss?: number }): Promise<{ id: string, checkpoint: string | null }> {
    const run = await this.#db.selectFrom('runs').select('latest_checkpoint').where('id', '=', this.#runId).executeTakeFirstOrThrow()
    const closed = o.closedAt !== undefined
    const checkpoint = closed ? sha(`seeded checkpoint ${this.#runId} ${number}`) : null
    const row = await this.#db.insertInto('rounds').values({
      run_id: this.#runId, number, status: closed ? 'closed' : 'open', base_checkpoint: run.latest_checkpoint!, opened_at: o.openedAt,
      deadline_at: new Date(o.openedAt.getTime() + 600_000), closed_at: o.closedAt ?? null, close_reason: closed ? 'all work units reported' : null,
      result_checkpoint: checkpoint, tokens: o.tokens ?? 0, train_loss: o.trainLoss ?? null, val_loss: o.valLoss ?? null
    }).returning('id').executeTakeFirstOrThrow()
    if (checkpoint !== null) {
      this.#tokensSeen += o.tokens ?? 0
      await this.#db.insertInto('checkpoints').values({ sha256: checkpoint, run_id: this.#runId, round: number, tokens_seen: this.#tokensSeen, val_loss: o.valLoss ?? null, created_at: o.closedAt }).execute()
      await this.#db.updateTable('runs').set({ current_round: number, tokens_seen: this.#tokensSeen, latest_checkpoint: checkpoint }).where('id', '=', this.#runId).execute()
    }
    return { id: row.id, checkpoint }
  }

  /** An accepted report of `node` in `round`, signed and chained, written at `at`. */
  async report (node: SeededNode, round: { id: string, number: number }, o: { tokens: number, computeSeconds: number, at: Date }): Promise<{ seq: number }> {
    const assignment = await this.#db.insertInto('assignments').values({
      run_id: this.#runId, round_id: round.id, node_id: node.id, ranges: JSON.stringify([]), tokens: o.tokens, status: 'accepted', resolved_at: o.at, created_at: o.at
    }).returning('id').executeTakeFirstOrThrow()
    const metadata: ReportMetadata = {
      runId: this.#runId, round: round.number, assignmentId: assignment.id, peerId: node.peerId, tokens: o.tokens, computeSeconds: o.computeSeconds,
      lossCurve: [5.5, 5.2], codec: 'int8', payloadBytes: 1, payloadSha256: sha(randomUUID())
    }
    const bytes = canonicalReportMetadata(metadata)
    const text = new TextDecoder().decode(bytes)
    const signature = Buffer.from(await node.key.sign(bytes)).toString('base64')
    const last = await this.#db.selectFrom('ledger').select('hash').where('run_id', '=', this.#runId).orderBy('seq', 'desc').limit(1).executeTakeFirst()
    const fields: LedgerEntryFields = {
      runId: this.#runId, round: round.number, nodeId: node.id, peerId: node.peerId, organizationId: node.organizationId, assignmentId: assignment.id,
      tokens: o.tokens, computeSeconds: o.computeSeconds, outcome: 'accepted', reason: null, metadata: text, signature, prevHash: last?.hash ?? await ledgerGenesisHash(this.#runId),
      // Hashed with the row (ledger v6), as the coordinator writes it.
      createdAt: o.at.toISOString()
    }
    const row = await this.#db.insertInto('ledger').values({
      run_id: fields.runId, round: fields.round, node_id: fields.nodeId, peer_id: fields.peerId, organization_id: fields.organizationId, assignment_id: fields.assignmentId,
      tokens: fields.tokens, compute_seconds: fields.computeSeconds, outcome: 'accepted', reason: null, metadata: text, signature, prev_hash: fields.prevHash,
      hash: await ledgerEntryHash(fields), created_at: o.at
    }).returning('seq').executeTakeFirstOrThrow()
    return { seq: row.seq }
  }
}
