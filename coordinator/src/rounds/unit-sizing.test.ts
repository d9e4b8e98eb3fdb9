import { test } from 'vitest'
import assert from 'node:assert/strict'
import { innerRecipeSchema, MAX_UNIT_INNER_STEPS } from '@barnraise/protocol'
import { openTestStore } from '../../../test/support/store.ts'
import { appendLedgerEntry } from '../ledger/ledger.ts'
import { MAX_STEP_FACTOR, measuredTimings, mostSteps, stepsByTiming } from './unit-sizing.ts'

const compute = (secondsPerStep: number) => ({ secondsPerStep, overheadSeconds: 0 })

test('with links alike, a node twice as fast as the median trains twice the steps; an unmeasured node trains the run\'s own', () => {
  assert.deepEqual(stepsByTiming(20, [compute(1), compute(0.5), compute(2), undefined]), [20, 40, 10, 20])
  assert.deepEqual(stepsByTiming(20, [undefined, undefined]), [20, 20])
})

test('a slow link costs steps: each unit is sized to come back when the median node\'s does', () => {
  // Same GPU; one node spends 10 s a round on transfers the others spend 2 s on.
  // Median turnaround at 20 steps of 1 s: 2 + 20 = 22 s; the slow link leaves 12 s of compute.
  assert.deepEqual(stepsByTiming(20, [{ secondsPerStep: 1, overheadSeconds: 2 }, { secondsPerStep: 1, overheadSeconds: 2 }, { secondsPerStep: 1, overheadSeconds: 10 }]), [20, 20, 12])
  // Transfers alone past the round: the least a unit can be.
  assert.deepEqual(stepsByTiming(20, [compute(1), compute(1), { secondsPerStep: 1, overheadSeconds: 100 }]), [20, 20, 20 / MAX_STEP_FACTOR])
})

test('claims move a unit only so far: at most 4× the run\'s steps, at least a quarter and never zero; nonsense timings are ignored', () => {
  assert.deepEqual(stepsByTiming(20, [compute(1000), compute(1), compute(0.0001)]), [20 / MAX_STEP_FACTOR, 20, 20 * MAX_STEP_FACTOR])
  assert.deepEqual(stepsByTiming(2, [compute(100), compute(1)]), [1, 8])
  assert.deepEqual(stepsByTiming(20, [compute(Number.NaN), compute(0), { secondsPerStep: 1, overheadSeconds: -1 }, compute(1)]), [20, 20, 20, 20])
})

test('no unit is sized past what a work unit may carry: an agent could neither read nor decline it', () => {
  // A run of 30,000 steps: 4× would be 120,000, past the work unit's 100,000.
  const [slow, fast] = stepsByTiming(30_000, [{ secondsPerStep: 0.01, overheadSeconds: 5 }, { secondsPerStep: 1e-9, overheadSeconds: 1 }])
  assert.equal(fast, MAX_UNIT_INNER_STEPS)
  assert.ok(slow! < 30_000)
  for (const innerSteps of [1, 20, 25_000, 25_001, 30_000, MAX_UNIT_INNER_STEPS]) {
    assert.ok(mostSteps(innerSteps) <= MAX_UNIT_INNER_STEPS)
    assert.ok(innerRecipeSchema.shape.innerSteps.safeParse(mostSteps(innerSteps)).success, `${innerSteps}`)
    assert.ok(stepsByTiming(innerSteps, [compute(1), compute(1e-12)]).every((s) => innerRecipeSchema.shape.innerSteps.safeParse(s).success))
  }
  assert.equal(mostSteps(20), 20 * MAX_STEP_FACTOR)
})

test('a lab\'s many nodes count once: a lab of fast-answering nodes cannot push two honest labs\' nodes down to the least', () => {
  const honest = { secondsPerStep: 1, overheadSeconds: 5 }
  // Two nodes that answer in a second and claim all of it as compute, one that claims none.
  const sybils = [{ secondsPerStep: 0.01, overheadSeconds: 0 }, { secondsPerStep: 0.01, overheadSeconds: 0 }, { secondsPerStep: 1e-6, overheadSeconds: 0.5 }]
  const steps = stepsByTiming(100, [{ ...honest, lab: 'a' }, { ...honest, lab: 'b' }, ...sybils.map((t) => ({ ...t, lab: 'x' }))])
  assert.deepEqual(steps.slice(0, 2), [100, 100])
  // Counted node by node, the same nodes would set the median: the honest ones get a quarter.
  assert.deepEqual(stepsByTiming(100, [honest, honest, ...sybils]).slice(0, 2), [25, 25])
  // Within a lab its nodes' median is the lab's time.
  assert.deepEqual(stepsByTiming(20, [{ ...compute(1), lab: 'a' }, { ...compute(1), lab: 'a' }, { ...compute(2), lab: 'b' }]), [30, 30, 15])
})

test('labs count by the work they did: several new labs claiming a speed cannot move the target that two working labs set', () => {
  const honest = { secondsPerStep: 1, overheadSeconds: 5 }
  // Three sign-ups, each with one accepted unit (20 steps) and a claim of near-instant compute.
  const sybils = ['x', 'y', 'z'].map((lab) => ({ secondsPerStep: 1e-4, overheadSeconds: 0, lab, weight: 20 }))
  const steps = stepsByTiming(100, [{ ...honest, lab: 'a', weight: 2000 }, { ...honest, lab: 'b', weight: 1500 }, ...sybils])
  assert.deepEqual(steps.slice(0, 2), [100, 100])
  // One lab each, as before weights, the three would set the target and cut the working labs to a quarter.
  assert.deepEqual(stepsByTiming(100, [{ ...honest, lab: 'a' }, { ...honest, lab: 'b' }, ...sybils.map(({ weight: _, ...t }) => t)]).slice(0, 2), [25, 25])
  // Equal weights are the plain median, the two middle labs' mean for an even count.
  assert.deepEqual(stepsByTiming(20, [{ ...compute(1), lab: 'a', weight: 7 }, { ...compute(2), lab: 'b', weight: 7 }]), [30, 15])
  // A lab with no sensible weight counts as one.
  assert.deepEqual(stepsByTiming(20, [{ ...compute(1), lab: 'a', weight: Number.NaN }, { ...compute(2), lab: 'b', weight: -5 }]), [30, 15])
})

test('turnaround ends when the report came in: a report held until its round closed does not make its node look slow', async () => {
  const store = await openTestStore('unit-sizing')
  try {
    const { db } = store
    const org = (await db.insertInto('organizations').values({ name: 'Lab A' }).returning('id').executeTakeFirstOrThrow()).id
    const user = (await db.insertInto('users').values({ email: 'o@x.test', display_name: 'O', password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
    const runId = (await db.insertInto('runs').values({ name: 'r', spec: '{}', failure_reason: null, created_by: user, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
    const roundId = (await db.insertInto('rounds').values({ run_id: runId, number: 1, status: 'closed', base_checkpoint: 'c'.repeat(64), deadline_at: new Date() }).returning('id').executeTakeFirstOrThrow()).id
    const nodes: string[] = []
    for (const [i, reportedAfter] of [10, null].entries()) {
      const node = (await db.insertInto('nodes').values({ peer_id: `peer-${i}`, organization_id: org, name: `n${i}`, hardware: '{}', agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date() }).returning('id').executeTakeFirstOrThrow()).id
      nodes.push(node)
      // Handed out 700 s ago; the first node's report came in 10 s later and was held (for its
      // twin, or its scorers) until its round closed just now, when its ledger row was written.
      const handedOut = new Date(Date.now() - 700_000)
      const assignment = (await db.insertInto('assignments').values({
        run_id: runId, round_id: roundId, node_id: node, ranges: '[]', tokens: 100, status: 'accepted', inner_steps: 10,
        created_at: handedOut, reported_at: reportedAfter === null ? null : new Date(handedOut.getTime() + reportedAfter * 1000)
      }).returning('id').executeTakeFirstOrThrow()).id
      await db.transaction().execute(async (trx) => {
        await appendLedgerEntry(trx, { runId, round: 1, nodeId: node, peerId: `peer-${i}`, organizationId: org, assignmentId: assignment, tokens: 100, computeSeconds: 5, outcome: 'accepted', reason: null, metadata: null, signature: null, executor: null })
      })
    }
    const timings = await measuredTimings(db, runId, nodes, 10, false)
    const held = timings.get(nodes[0]!)!
    assert.equal(held.secondsPerStep, 0.5)
    assert.equal(held.weight, 10, 'weighed by the steps its accepted report trained')
    assert.ok(Math.abs(held.overheadSeconds - 5) < 0.01, `10 s from hand-out to report, 5 s of it compute: ${held.overheadSeconds}`)
    // A row from before reported_at existed: its turnaround ends at its ledger row, as it did.
    assert.ok(timings.get(nodes[1]!)!.overheadSeconds > 690)
    // Overlapped runs count no overhead at all.
    assert.equal((await measuredTimings(db, runId, nodes, 10, true)).get(nodes[0]!)!.overheadSeconds, 0)
  } finally {
    await store.close()
  }
})
