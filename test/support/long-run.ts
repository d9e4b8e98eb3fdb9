import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../../coordinator/src/db/schema.ts'

const hex = (): string => randomBytes(32).toString('hex')

/** What `seedLongRun` wrote, for a test's expectations. */
export interface LongRun { runId: string, userId: string, nodeIds: string[], roundIds: string[] }

/**
 * A run with `rounds` closed rounds in which each of `nodes` nodes (half of one lab, half of
 * another; one GPU each) has an accepted, scored report, and one report a round is refused,
 * each round with its checkpoint; written in a few bulk inserts, with no signing or chaining,
 * for tests of how reads of a long run scale. The rounds start at `from` (round 1) a minute apart.
 */
export async function seedLongRun (db: Kysely<Database>, o: { rounds: number, nodes: number, from: Date, name?: string }): Promise<LongRun> {
  const at = (round: number, seconds = 0): Date => new Date(o.from.getTime() + (round - 1) * 60_000 + seconds * 1000)
  const orgs = await db.insertInto('organizations').values([{ name: `Lab A ${hex().slice(0, 8)}` }, { name: `Lab B ${hex().slice(0, 8)}` }]).returning(['id', 'name']).execute()
  const user = await db.insertInto('users').values({ email: `${hex().slice(0, 12)}@long.test`, display_name: 'Long', password_hash: 'x', roles: ['organizer', 'funder'], organization_id: orgs[0]!.id }).returning('id').executeTakeFirstOrThrow()
  const hardware = JSON.stringify({ hostname: 'box', platform: 'linux', arch: 'x64', cpuModel: 'Test CPU', cpuCores: 8, memoryBytes: 2 ** 34, gpus: [{ name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81_559 }] })
  const nodes = await db.insertInto('nodes').values(Array.from({ length: o.nodes }, (_, i) => ({
    peer_id: `12D3KooW${hex()}`, organization_id: orgs[i % 2]!.id, name: `node-${i}`, hardware, agent_version: 'seed', first_seen_at: o.from, last_seen_at: o.from
  }))).returning(['id', 'peer_id', 'organization_id']).execute()
  const initial = hex()
  const spec = { name: o.name ?? 'long run', rounds: o.rounds * 2, paramCount: 1000, recipe: { innerSteps: 1, batchSize: 1, seqLen: 8 } }
  const run = await db.insertInto('runs').values({
    name: spec.name, spec: JSON.stringify(spec), created_by: user.id, updated_at: o.from, latest_checkpoint: initial, status: 'paused', current_round: o.rounds
  }).returning('id').executeTakeFirstOrThrow()
  const checkpoints = Array.from({ length: o.rounds }, () => hex())
  const rounds = await db.insertInto('rounds').values(Array.from({ length: o.rounds }, (_, i) => ({
    run_id: run.id, number: i + 1, status: 'closed' as const, base_checkpoint: i === 0 ? initial : checkpoints[i - 1]!, opened_at: at(i + 1), deadline_at: at(i + 1, 600),
    closed_at: at(i + 1, 50), close_reason: 'all work units reported', result_checkpoint: checkpoints[i]!, tokens: 100 * o.nodes, train_loss: 5 - i / o.rounds, val_loss: 5 - i / o.rounds
  }))).returning(['id', 'number']).execute()
  await db.insertInto('checkpoints').values(rounds.map((r, i) => ({ sha256: checkpoints[i]!, run_id: run.id, round: r.number, tokens_seen: 100 * o.nodes * r.number, val_loss: 5 - i / o.rounds, created_at: at(r.number, 50) }))).execute()
  const assignments = await db.insertInto('assignments').values(rounds.flatMap((r) => nodes.map((n) => ({
    run_id: run.id, round_id: r.id, node_id: n.id, ranges: JSON.stringify([]), tokens: 100, status: 'accepted' as const, created_at: at(r.number), resolved_at: at(r.number, 40)
  })))).returning(['id', 'round_id', 'node_id']).execute()
  const numberOf = new Map(rounds.map((r) => [r.id, r.number]))
  const nodeOf = new Map(nodes.map((n) => [n.id, n]))
  const rows = assignments.map((a) => {
    const node = nodeOf.get(a.node_id)!
    const round = numberOf.get(a.round_id)!
    return {
      run_id: run.id, round, node_id: node.id, peer_id: node.peer_id, organization_id: node.organization_id, assignment_id: a.id, tokens: 100, compute_seconds: 36,
      outcome: 'accepted' as const, reason: null, metadata: '{}', signature: 'seeded', prev_hash: hex(), hash: hex(), created_at: at(round, 40), executor: 'torch-cuda', score: 0.01
    }
  })
  // One refused report a round, from the first node: the run page lists refusals per round.
  const refused = rounds.map((r) => ({
    run_id: run.id, round: r.number, node_id: nodes[0]!.id, peer_id: nodes[0]!.peer_id, organization_id: nodes[0]!.organization_id, assignment_id: null, tokens: 100, compute_seconds: 36,
    outcome: 'refused' as const, reason: 'seeded refusal', metadata: '{}', signature: 'seeded', prev_hash: hex(), hash: hex(), created_at: at(r.number, 45), executor: 'torch-cuda', score: null
  }))
  const all = [...rows, ...refused].sort((a, b) => a.created_at.getTime() - b.created_at.getTime())
  for (let i = 0; i < all.length; i += 1000) await db.insertInto('ledger').values(all.slice(i, i + 1000)).execute()
  return { runId: run.id, userId: user.id, nodeIds: nodes.map((n) => n.id), roundIds: rounds.map((r) => r.id) }
}
