import type { Kysely, Transaction } from 'kysely'
import type { EnrollRequest, HardwareProfile } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import { consumeEnrollmentToken } from './enrollment-tokens.ts'
import { nameKey } from './name-key.ts'
import { nodeRecords } from './reputation.ts'
import type { NodeRecord } from './reputation.ts'

export interface EnrolledNode {
  nodeId: string
  organizationId: string
  organizationName: string
  rejoined: boolean
}

/**
 * Binds a peer id to an organization. A peer already enrolled is recognised by its key
 * alone (its row is refreshed, no token use is spent); a new peer must bring a valid token for
 * a lab with fewer than `maxNodesPerOrganization` unrevoked nodes, and a refused one writes nothing.
 */
export async function enrollNode (db: Kysely<Database>, peerId: string, request: EnrollRequest, options: EnrollOptions = {}): Promise<EnrolledNode> {
  const maxNodes = options.maxNodesPerOrganization ?? DEFAULT_MAX_NODES_PER_ORGANIZATION
  return await db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('nodes')
      .innerJoin('organizations', 'organizations.id', 'nodes.organization_id')
      .select(['nodes.id', 'nodes.organization_id', 'nodes.revoked_at', 'organizations.name as organization_name'])
      .where('nodes.peer_id', '=', peerId)
      .executeTakeFirst()
    if (existing !== undefined) {
      if (existing.revoked_at !== null) {
        throw new CoordinatorError('ERR_NODE_REVOKED', 'this node was revoked by its organization; ask your lab admin')
      }
      const wanted = visibleName(request.name)
      // A name it cannot have (its lab holds every form of it) leaves the one it has.
      const name = wanted === undefined ? undefined : await freeName(trx, existing.organization_id, wanted, existing.id, peerId)
      await trx.updateTable('nodes')
        .set({
          hardware: JSON.stringify(request.hardware),
          agent_version: request.agentVersion,
          last_seen_at: new Date(),
          ...(name !== undefined ? { name: name.name, name_key: name.key } : {})
        })
        .where('id', '=', existing.id)
        .execute()
      return { nodeId: existing.id, organizationId: existing.organization_id, organizationName: existing.organization_name, rejoined: true }
    }
    if (request.token === undefined) {
      throw new CoordinatorError('ERR_NOT_ENROLLED', 'this node is not enrolled yet; join with --token from your lab admin')
    }
    const { tokenId, organizationId } = await consumeEnrollmentToken(trx, request.token)
    // Counted with the lab's row locked, so two joins at once cannot both take its last place.
    await lockOrganization(trx, organizationId)
    const enrolled = Number((await trx.selectFrom('nodes').select((eb) => eb.fn.countAll<string>().as('n'))
      .where('organization_id', '=', organizationId).where('revoked_at', 'is', null).executeTakeFirstOrThrow()).n)
    if (enrolled >= maxNodes) {
      throw new CoordinatorError('ERR_QUOTA_EXCEEDED', `this lab already has ${enrolled} enrolled nodes, the most this coordinator allows one lab (${maxNodes}, --max-nodes-per-lab); ` +
        'a lab admin can revoke machines it no longer uses on the Labs page, or ask the coordinator\'s operator to raise the limit')
    }
    const now = new Date()
    // Node names are public (ledger, model cards): a machine's hostname is not, unless its owner names it so.
    const wanted = visibleName(request.name) ?? `node-${peerId.slice(-8)}`
    const name = await freeName(trx, organizationId, wanted, null, peerId)
    if (name === undefined) {
      throw new CoordinatorError('ERR_NAME_TAKEN', `this lab's nodes already hold the name "${wanted}", its numbered forms and its forms with this node's peer id; join with another --name`)
    }
    const row = await trx.insertInto('nodes')
      .values({
        peer_id: peerId,
        organization_id: organizationId,
        name: name.name,
        name_key: name.key,
        hardware: JSON.stringify(request.hardware),
        agent_version: request.agentVersion,
        enrolled_with_token_id: tokenId,
        first_seen_at: now,
        last_seen_at: now
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const org = await trx.selectFrom('organizations').select('name').where('id', '=', organizationId).executeTakeFirstOrThrow()
    return { nodeId: row.id, organizationId, organizationName: org.name, rejoined: false }
  })
}

export interface EnrollOptions {
  /** Unrevoked nodes one organization may hold; a new node past it is refused (default DEFAULT_MAX_NODES_PER_ORGANIZATION). */
  maxNodesPerOrganization?: number
}

/**
 * Unrevoked nodes one lab may hold by default: anyone may sign up as a lab and issue tokens of
 * 10,000 uses, and each node of a lab serving a run is a row its round openings read.
 */
export const DEFAULT_MAX_NODES_PER_ORGANIZATION = 1000

/** Longest node name (protocol/src/enroll.ts). */
const MAX_NODE_NAME = 100

/** Candidate names looked up per query: a lab rarely has more than a few of one name. */
const CANDIDATES_PER_QUERY = 32

/**
 * Queries of numbered candidates before a name with the peer id is taken instead: a lab's names
 * (revoked nodes' included) are its own to fill, and a join holds the lab's row while it looks.
 */
const NAME_QUERIES = 4

/**
 * A requested name without the spaces around it (a page shows none, as organization names keep
 * none), unless it reads as nothing (only spaces or invisible characters): such a node keeps its
 * name, or gets the default.
 */
function visibleName (name: string | undefined): string | undefined {
  return name === undefined || nameKey(name) === '' ? undefined : name.trim()
}

/** `wanted` cut to `length` UTF-16 units without splitting a surrogate pair (half of one is not Unicode, and Postgres would store U+FFFD). */
function cut (wanted: string, length: number): string {
  if (wanted.length <= length) return wanted
  const last = wanted.charCodeAt(length - 1)
  return wanted.slice(0, last >= 0xd800 && last <= 0xdbff ? length - 1 : length)
}

/** The nth name `wanted` may get: itself, then `wanted-2`, `-3` …, cut to fit the longest name. */
function candidate (wanted: string, n: number): string {
  if (n === 1) return wanted
  const suffix = `-${n}`
  return cut(wanted, MAX_NODE_NAME - suffix.length) + suffix
}

/**
 * `wanted`, or `wanted-2`, `-3` … where another node of the lab has it, compared by `nameKey`
 * (`nodes.name_key`): ledger rows and public pages name a node by lab and name, so one node must
 * not pass for another of its lab, neither as typed nor in other case, spacing or invisible
 * characters ("trainer" and "train\u200ber" are the lab's "Trainer"). Joins of one lab take
 * turns on its row, so two cannot pick the same name at once. Past NAME_QUERIES batches of
 * numbers, `wanted` with the peer id's last 8 characters, then with all of it; undefined when
 * the lab holds even those (only its own nodes, named so on purpose, can).
 */
async function freeName (trx: Transaction<Database>, organizationId: string, wanted: string, self: string | null, peerId: string): Promise<{ name: string, key: string } | undefined> {
  await lockOrganization(trx, organizationId)
  // Exact keys, a batch at a time, on the (organization_id, name_key) index: a lab's names are
  // not read whole, and a lab that holds many forms of one name costs a few queries, not one per 32 of them.
  const firstFree = async (names: string[]): Promise<{ name: string, key: string } | undefined> => {
    const batch = names.map((name) => ({ name, key: nameKey(name) }))
    const taken = new Set((await trx.selectFrom('nodes').select('name_key').where('organization_id', '=', organizationId)
      .where('name_key', 'in', batch.map((c) => c.key))
      .$if(self !== null, (q) => q.where('id', '!=', self!)).execute()).map((r) => r.name_key))
    return batch.find((c) => !taken.has(c.key))
  }
  for (let query = 0; query < NAME_QUERIES; query++) {
    const first = 1 + query * CANDIDATES_PER_QUERY
    const free = await firstFree(Array.from({ length: CANDIDATES_PER_QUERY }, (_, i) => candidate(wanted, first + i)))
    if (free !== undefined) return free
  }
  const withPeer = (suffix: string): string => cut(wanted, MAX_NODE_NAME - suffix.length - 1) + '-' + suffix
  return await firstFree([withPeer(peerId.slice(-8)), withPeer(peerId.slice(-(MAX_NODE_NAME - 2)))])
}

/** Holds the organization's row for the rest of the transaction: its joins take turns. */
async function lockOrganization (trx: Transaction<Database>, organizationId: string): Promise<void> {
  await trx.selectFrom('organizations').select('id').where('id', '=', organizationId).forUpdate().executeTakeFirst()
}

/** Records that an enrolled peer is alive; refuses unknown or revoked peers. */
export async function touchNode (db: Kysely<Database>, peerId: string): Promise<void> {
  const row = await db.updateTable('nodes')
    .set({ last_seen_at: new Date() })
    .where('peer_id', '=', peerId)
    .where('revoked_at', 'is', null)
    .returning('id')
    .executeTakeFirst()
  if (row === undefined) throw new CoordinatorError('ERR_NOT_ENROLLED', 'this peer is not an enrolled node (or was revoked)')
}

export interface NodeSummary {
  id: string
  peerId: string
  name: string
  organizationId: string
  organizationName: string
  hardware: HardwareProfile
  agentVersion: string
  firstSeenAt: string
  lastSeenAt: string
  revoked: boolean
  online: boolean
  /** Set while the node's reports are scored but neither folded nor credited. */
  quarantine: { since: string, reason: string } | null
  /** Its verdicts since its last review (public: funders and organizers weigh a node by them); null before any. */
  record: NodeRecord | null
}

/** Lists nodes, newest first; `online` comes from the live connection set, not the database. */
export async function listNodes (db: Kysely<Database>, isOnline: (peerId: string) => boolean, organizationId?: string): Promise<NodeSummary[]> {
  let query = db.selectFrom('nodes')
    .innerJoin('organizations', 'organizations.id', 'nodes.organization_id')
    .selectAll('nodes')
    .select('organizations.name as organization_name')
    .orderBy('nodes.first_seen_at', 'desc')
  if (organizationId !== undefined) query = query.where('nodes.organization_id', '=', organizationId)
  const rows = await query.execute()
  const records = await nodeRecords(db)
  return rows.map((r) => ({
    id: r.id,
    peerId: r.peer_id,
    name: r.name,
    organizationId: r.organization_id,
    organizationName: r.organization_name,
    hardware: r.hardware,
    agentVersion: r.agent_version,
    firstSeenAt: r.first_seen_at.toISOString(),
    lastSeenAt: r.last_seen_at.toISOString(),
    revoked: r.revoked_at !== null,
    online: r.revoked_at === null && isOnline(r.peer_id),
    quarantine: r.quarantined_at === null ? null : { since: r.quarantined_at.toISOString(), reason: r.quarantine_reason ?? '' },
    record: records.get(r.id) ?? null
  }))
}

/** What a node's own lab (and an admin) sees, and nobody else: where and what exactly the machine runs. */
type PrivateHardware = 'hostname' | 'platform' | 'arch'

/** A node as a public reader sees it: enough to credit it and size the pool, nothing that locates or fingerprints the machine. */
export interface PublicNodeSummary extends Omit<NodeSummary, 'hardware' | 'agentVersion'> {
  hardware: Omit<HardwareProfile, PrivateHardware | 'gpus'> & Partial<Pick<HardwareProfile, PrivateHardware>> & {
    gpus: Array<Omit<HardwareProfile['gpus'][number], 'driverVersion'> & { driverVersion?: string }>
  }
  agentVersion: string | null
}

/** Whether `viewer` may see a node's hostname, platform, driver and agent versions: its own lab's accounts and admins. */
export function maySeeNodeDetails (viewer: { roles: readonly string[], organizationId: string | null } | null, organizationId: string): boolean {
  if (viewer === null) return false
  return viewer.roles.includes('admin') || viewer.organizationId === organizationId
}

/** A node with the machine's private details dropped, unless `viewer` may see them. */
export function nodeForViewer (node: NodeSummary, viewer: { roles: readonly string[], organizationId: string | null } | null): PublicNodeSummary {
  if (maySeeNodeDetails(viewer, node.organizationId)) return node
  const { cpuModel, cpuCores, memoryBytes, gpus } = node.hardware
  return {
    ...node,
    hardware: { cpuModel, cpuCores, memoryBytes, gpus: gpus.map((g) => ({ name: g.name, memoryMiB: g.memoryMiB })) },
    agentVersion: null
  }
}

/** Revokes a node of an organization: it can no longer heartbeat, enroll or get work. */
export async function revokeNode (db: Kysely<Database>, nodeId: string, organizationId: string | null): Promise<void> {
  await db.transaction().execute(async (trx) => {
    let query = trx.updateTable('nodes').set({ revoked_at: new Date() }).where('id', '=', nodeId)
    if (organizationId !== null) query = query.where('organization_id', '=', organizationId)
    const result = await query.executeTakeFirst()
    if (result.numUpdatedRows === 0n) throw new CoordinatorError('ERR_NOT_FOUND', 'no such node')
    // Its open units expire now: the round stops waiting for them and their tokens go out again.
    await trx.updateTable('assignments').set({ status: 'expired', resolved_at: new Date() })
      .where('node_id', '=', nodeId).where('status', 'in', ['assigned', 'held']).execute()
  })
}
