import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodePseudoGradient, encodePseudoGradient } from '@barnraise/protocol'
import type { WorkUnit } from '@barnraise/protocol'
import { countParams, initParams, outerStep, presetConfig, sha256Hex, storedCheckpointBytes } from '@barnraise/trainer'
import { momentumFor, rebuildBase, recordMomentum } from './base-rebuild.ts'
import type { RebuildStore } from './base-rebuild.ts'
import { syntheticUnit } from './executors/synthetic-unit.ts'

function memoryStore (): RebuildStore & { blobs: Map<string, Uint8Array> } {
  const blobs = new Map<string, Uint8Array>()
  return {
    blobs,
    has: async (sha) => blobs.has(sha),
    get: async (sha) => { const b = blobs.get(sha); if (b === undefined) throw new Error(`no blob ${sha}`); return b },
    put: async (sha, bytes) => { blobs.set(sha, bytes) },
    drop: async (sha) => { blobs.delete(sha) }
  }
}

function deltas (n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  let s = seed
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = (s / 2 ** 32 - 0.5) * 1e-2 }
  return out
}

const config = presetConfig('tiny')
const n = countParams(config)
const outer = { lr: 0.7, momentum: 0.9 }

/**
 * A closed round as the coordinator makes it (decode each report, fold tokens × Δ in order,
 * the token-weighted mean, the outer step), and the next round's unit that carries it.
 */
function closedRound (momentum: Float32Array | null): { store: ReturnType<typeof memoryStore>, unit: WorkUnit, from: string, momentum: Float32Array } {
  const store = memoryStore()
  const fromBytes = storedCheckpointBytes(config, initParams(config, 3).flat)
  const from = sha256Hex(fromBytes)
  store.blobs.set(from, fromBytes)
  const sum = new Float32Array(n)
  let tokens = 0
  const reports = []
  for (const [seed, t] of [[1, 96], [2, 160]] as const) {
    const payload = encodePseudoGradient('topk', deltas(n, seed))
    store.blobs.set(sha256Hex(payload), payload)
    reports.push({ sha256: sha256Hex(payload), tokens: t, bytes: payload.byteLength })
    const decoded = decodePseudoGradient('topk', payload, n)
    for (let i = 0; i < n; i++) sum[i]! += Math.fround(t * decoded[i]!)
    tokens += t
  }
  const mean = new Float32Array(n)
  for (let i = 0; i < n; i++) mean[i] = sum[i]! * (1 / tokens)
  const theta = new Float32Array(initParams(config, 3).flat)
  const next = outerStep(theta, mean, momentum, outer)
  const unit: WorkUnit = {
    ...syntheticUnit(config, { innerSteps: 1, batchSize: 1, seqLen: 8 }),
    codec: 'topk',
    baseCheckpoint: sha256Hex(storedCheckpointBytes(config, theta)),
    update: { from, reports, outerLr: outer.lr, outerMomentum: outer.momentum }
  }
  return { store, unit, from, momentum: next }
}

test('a node rebuilds the base the coordinator made from the round\'s reports, to the bit, and follows on', async () => {
  const runDir = await mkdtemp(join(tmpdir(), 'barnraise-rebuild-'))
  const first = closedRound(null)
  assert.deepEqual(await rebuildBase(first.store, runDir, first.unit), { rebuilt: false, reason: 'this node does not know the momentum of the previous base' })
  await recordMomentum(runDir, first.from, null)
  const outcome = await rebuildBase(first.store, runDir, first.unit)
  assert.ok(outcome.rebuilt, JSON.stringify(outcome))
  assert.equal(sha256Hex(outcome.bytes), first.unit.baseCheckpoint)
  assert.equal(outcome.reports, 2)
  // The rebuilt base is cached, its momentum known; the reports and the old base are dropped.
  assert.deepEqual([...first.store.blobs.keys()], [first.unit.baseCheckpoint])
  assert.deepEqual(await momentumFor(runDir, first.unit.baseCheckpoint, n), first.momentum)

  // With a momentum from before (not the first outer step) it is carried into the step.
  const runDir2 = await mkdtemp(join(tmpdir(), 'barnraise-rebuild-'))
  const carried = deltas(n, 9)
  const second = closedRound(carried)
  await recordMomentum(runDir2, second.from, carried)
  assert.ok((await rebuildBase(second.store, runDir2, second.unit)).rebuilt)
})

test('a rebuild that cannot be made or does not hash right is refused with the reason, and nothing is kept', async () => {
  const runDir = await mkdtemp(join(tmpdir(), 'barnraise-rebuild-'))
  const round = closedRound(null)
  await recordMomentum(runDir, round.from, null)
  const wrong = { ...round.unit, update: { ...round.unit.update!, outerLr: 0.5 } }
  const outcome = await rebuildBase(round.store, runDir, wrong)
  assert.equal(outcome.rebuilt, false)
  assert.match((outcome as { reason: string }).reason, /^the rebuilt base hashes to [0-9a-f]{12}, not [0-9a-f]{12}$/)
  assert.equal(await round.store.has(round.unit.baseCheckpoint), false)

  const heavy = closedRound(null)
  await recordMomentum(runDir, heavy.from, null)
  const big = { ...heavy.unit, update: { ...heavy.unit.update!, reports: heavy.unit.update!.reports!.map((r) => ({ ...r, bytes: 4 * n })) } }
  assert.match((await rebuildBase(heavy.store, runDir, big) as { reason: string }).reason, /are no smaller than the model/)
  heavy.store.blobs.delete(heavy.from)
  assert.match((await rebuildBase(heavy.store, runDir, heavy.unit) as { reason: string }).reason, /does not hold the previous base/)
})

test('a node rebuilds the base from the round\'s int8 aggregate, the mean exactly as the coordinator encoded and applied it', async () => {
  const runDir = await mkdtemp(join(tmpdir(), 'barnraise-rebuild-'))
  const round = closedRound(null)
  // The coordinator's side (round-engine.ts #closeRound): encode the mean once, apply its decoding.
  const mean = deltas(n, 5)
  const encoded = encodePseudoGradient('int8', mean)
  const theta = new Float32Array(initParams(config, 3).flat)
  const next = outerStep(theta, decodePseudoGradient('int8', encoded, n), null, outer)
  round.store.blobs.set(sha256Hex(encoded), encoded)
  const unit: WorkUnit = {
    ...round.unit,
    codec: 'int8',
    baseCheckpoint: sha256Hex(storedCheckpointBytes(config, theta)),
    update: { from: round.from, aggregate: { sha256: sha256Hex(encoded), bytes: encoded.byteLength, codec: 'int8' }, outerLr: outer.lr, outerMomentum: outer.momentum }
  }
  await recordMomentum(runDir, round.from, null)
  const outcome = await rebuildBase(round.store, runDir, unit)
  assert.ok(outcome.rebuilt, JSON.stringify(outcome))
  assert.equal(outcome.reports, 0)
  assert.equal(outcome.reportBytes, encoded.byteLength)
  assert.ok(outcome.reportBytes * 3 < storedCheckpointBytes(config, theta).byteLength, 'about a quarter of the model')
  assert.deepEqual(await momentumFor(runDir, unit.baseCheckpoint, n), next)
  assert.equal(round.store.blobs.has(sha256Hex(encoded)), false, 'the aggregate is used once')
})

test('an update whose reports are larger than it says is not rebuilt from: the first one found larger stops it, before the next is fetched', async () => {
  const runDir = await mkdtemp(join(tmpdir(), 'barnraise-rebuild-'))
  const round = closedRound(null)
  await recordMomentum(runDir, round.from, null)
  // Whole fp32 reports, each a model's size, listed as a few bytes: the claims pass the
  // "smaller than the model" test, and 10,000 of them would be 10,000 models on this disk.
  const reports = Array.from({ length: 40 }, (_, i) => {
    const payload = encodePseudoGradient('fp32', deltas(n, 100 + i))
    round.store.blobs.set(sha256Hex(payload), payload)
    return { sha256: sha256Hex(payload), tokens: 64, bytes: 16 }
  })
  const fetched: string[] = []
  const store: RebuildStore = { ...round.store, get: async (sha, signal) => { fetched.push(sha); return await round.store.get(sha, signal) } }
  const lying: WorkUnit = { ...round.unit, codec: 'fp32', update: { ...round.unit.update!, reports } }
  const outcome = await rebuildBase(store, runDir, lying)
  assert.equal(outcome.rebuilt, false)
  assert.match((outcome as { reason: string }).reason, /is \d+ bytes, not the 16 the round's update lists/)
  assert.deepEqual(fetched, [round.from, reports[0]!.sha256], 'the base, then one report')
  assert.ok(reports.every((r) => !round.store.blobs.has(r.sha256)), 'every listed report is dropped')
})
