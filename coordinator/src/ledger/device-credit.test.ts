import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { openTestStore } from '../../../test/support/store.ts'
import type { Database } from '../db/schema.ts'
import { runDeliveredHours } from '../pledges/run-deliveries.ts'
import { MIN_CORE_FLOPS, MIN_DEVICE_FLOPS, MIN_FLOOR_SHARE, creditRow, creditedCores, creditedDevices, deviceFloor, fixedFloorTokensPerSecond, gpuTimeFloorTokensPerSecond, loadDeviceFloor, nodeRates } from './device-credit.ts'
import type { DeviceFloor, RowClaim } from './device-credit.ts'
import { deviceHours } from './device-hours.ts'
import { appendLedgerEntry, readLedger } from './ledger.ts'

const PARAMS = 125_000_000

let store: Awaited<ReturnType<typeof openTestStore>>
let db: Kysely<Database>
let runId: string
let orgId: string

beforeAll(async () => {
  store = await openTestStore('device-credit')
  db = store.db
  orgId = (await db.insertInto('organizations').values({ name: 'Lab' }).returning('id').executeTakeFirstOrThrow()).id
  runId = (await db.insertInto('runs').values({ name: 'r', spec: '{}', failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
}, 60_000)
afterAll(async () => { await store?.close() })

test('before a run has single-GPU rows, a device counts when it shows 10 TFLOP/s', () => {
  const floor = deviceFloor([], PARAMS)
  assert.equal(floor.source, 'fixed floor')
  assert.equal(floor.tokensPerSecond, MIN_DEVICE_FLOPS / (6 * PARAMS))
  // 8 GPUs at 40% of an H100 each (≈ 528k tokens/s on 125M): all 8 count.
  assert.equal(creditedDevices(8, 8 * 528_000 * 60, 60, floor), 8)
  // One such GPU signing 64: its rate shows 39 devices at the fixed floor, never more than claimed.
  assert.equal(creditedDevices(64, 528_000 * 60, 60, floor), 39)
  // A slow rig, or the demo model on many GPUs, is credited one device, never none.
  assert.equal(creditedDevices(4, 100, 60, floor), 1)
  // No measurable time: no hours to multiply, so the claim stands.
  assert.equal(creditedDevices(4, 100, 0, floor), 4)
})

test('a CPU row is credited as many of its claimed cores as its throughput shows at 0.1 GFLOP/s a core, at least one', () => {
  const small = 198_208
  const perCore = MIN_CORE_FLOPS / (6 * small)
  // The demo model on two honest cores of this VM (~2,100 tokens/s, 2.5 GFLOP/s): both count.
  assert.equal(creditedCores(2, 2_100 * 60, 60, small), 2)
  // The same work from a node claiming 4,096 cores: what its rate shows, about 21.
  assert.equal(creditedCores(4096, 2_100 * 60, 60, small), Math.floor(2_100 / perCore))
  // A trickle, no time, or a nonsensical claim: one core.
  assert.equal(creditedCores(64, 1, 60, small), 1)
  assert.equal(creditedCores(64, 100, 0, small), 1)
  assert.equal(creditedCores(0, 2_100 * 60, 60, small), 1)
})

test('with single-GPU rows the floor is half their 25th-percentile rate, so a liar among peers gains at most 2×', () => {
  // Three H100s at ~500k tokens/s and one RTX 4090 at ~100k: the floor follows the slower GPUs.
  const floor = deviceFloor([510_000, 100_000, 490_000, 500_000], PARAMS)
  assert.equal(floor.source, 'run')
  assert.equal(floor.tokensPerSecond, 50_000)
  // Eight honest 4090s (at 90% scaling) are credited in full.
  assert.equal(creditedDevices(8, 8 * 90_000 * 60, 60, floor), 8)
  // An H100 signing 64 is credited what half a 4090 a device would show: still bounded by its work.
  assert.equal(creditedDevices(64, 500_000 * 60, 60, floor), 10)
  const peers = deviceFloor([500_000, 510_000, 490_000], PARAMS)
  assert.equal(creditedDevices(64, 500_000 * 60, 60, peers), 2)
  // Non-finite or non-positive rates from odd rows are ignored rather than dragging the floor down.
  assert.equal(deviceFloor([Number.NaN, 0, -1, 500_000], PARAMS).source, 'fixed floor')
})

const H100 = { name: 'NVIDIA H100', memoryMiB: 81_559 }
/** A row from a node listing GPUs, as creditRow sees it. */
const gpuRow = (o: Partial<RowClaim> & Pick<RowClaim, 'tokens' | 'computeSeconds'>): RowClaim => ({ kind: 'gpu', devices: null, listedGpus: 1, cpuCores: 64, paramCount: PARAMS, ...o })
/** GPU-hours a credit is worth, as every reader of the ledger counts them. */
const gpuHoursOf = (seconds: number, credit: { devices: number | null, cores: number }, listed = 64): number => {
  const counted = deviceHours(seconds, { gpus: Array.from({ length: listed }, () => H100), cpuCores: 64 }, 'torch-cuda', credit.devices, credit.cores)
  return counted.kind === 'gpu' ? counted.hours : 0
}

test('a row from a GPU that does not show a GPU\'s work is one CPU core: one token in an hour earns no GPU-hour, named devices or not', () => {
  const floor = deviceFloor([], PARAMS)
  // The review's case: 1 token in 3600 s, no device count (a CPU machine that listed an H100 and signed torch-cuda or no executor).
  const lone = creditRow(gpuRow({ tokens: 1, computeSeconds: 3600 }), floor)
  assert.deepEqual(lone, { devices: null, cores: 1 })
  assert.equal(gpuHoursOf(3600, lone), 0)
  assert.deepEqual(deviceHours(3600, { gpus: [H100], cpuCores: 64 }, 'torch-cuda', lone.devices, lone.cores), { kind: 'cpu', hours: 1 })
  // The same naming 64 devices: still no GPU time (the count is kept within what the row signed, for verifyLedger).
  const many = creditRow(gpuRow({ tokens: 1, computeSeconds: 3600, devices: 64, listedGpus: 64 }), floor)
  assert.deepEqual(many, { devices: 1, cores: 1 })
  assert.equal(gpuHoursOf(3600, many), 0)
  // An honest H100 at 40% MFU (≈ 528k tokens/s on 125M) is GPU time in full; so is an 8-GPU rig naming 8.
  assert.deepEqual(creditRow(gpuRow({ tokens: 528_000 * 60, computeSeconds: 60 }), floor), { devices: null, cores: 0 })
  assert.deepEqual(creditRow(gpuRow({ tokens: 8 * 528_000 * 60, computeSeconds: 60, devices: 8, listedGpus: 8 }), floor), { devices: 8, cores: 0 })
  // Never more devices than the node lists.
  assert.deepEqual(creditRow(gpuRow({ tokens: 8 * 528_000 * 60, computeSeconds: 60, devices: 8, listedGpus: 2 }), floor), { devices: 2, cores: 0 })
  // CPU rows are as before: their cores as their rate shows them.
  assert.deepEqual(creditRow({ ...gpuRow({ tokens: 2_100 * 60, computeSeconds: 60 }), kind: 'cpu', listedGpus: 0, cpuCores: 2, paramCount: 198_208 }, floor), { devices: null, cores: 2 })
})

test('whatever a row claims, its GPU-hours never exceed its tokens at the floor\'s rate', () => {
  const floors: DeviceFloor[] = [deviceFloor([], PARAMS), deviceFloor([500_000, 510_000, 490_000], PARAMS), deviceFloor([100, 100, 100, 100], PARAMS), deviceFloor([510_000, 100_000, 490_000, 500_000], PARAMS)]
  let seed = 7
  const random = (): number => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 2 ** 32 }
  let gpuRows = 0
  for (const floor of floors) {
    for (let i = 0; i < 2000; i++) {
      const computeSeconds = 10 ** (random() * 7 - 3)
      const tokens = Math.max(1, Math.round(10 ** (random() * 11)))
      const devices = random() < 0.5 ? null : 2 + Math.floor(random() * 63)
      const listedGpus = 1 + Math.floor(random() * 64)
      const credit = creditRow(gpuRow({ tokens, computeSeconds, devices, listedGpus }), floor)
      const hours = gpuHoursOf(computeSeconds, credit, listedGpus)
      if (credit.cores === 0) gpuRows++
      assert.ok(hours * 3600 <= tokens / floor.gpuTime * (1 + 1e-12), `${tokens} tokens in ${computeSeconds} s on ${devices} devices: ${hours} GPU-hours`)
      if (credit.devices !== null) assert.ok(credit.devices >= 1 && credit.devices <= devices!, 'within what the node signed')
    }
  }
  assert.ok(gpuRows > 1000, `the sample has GPU-time rows too (${gpuRows})`)
})

test('the floor is one rate per node and never below half the fixed floor: sandbagged rows cannot open the 64× door', () => {
  const fixed = fixedFloorTokensPerSecond(PARAMS)
  // The review's case: three honest H100 nodes and two that file slow rows on purpose.
  const floor = deviceFloor([500_000, 510_000, 490_000, 100, 100], PARAMS)
  assert.equal(floor.source, 'run')
  assert.equal(floor.tokensPerSecond, MIN_FLOOR_SHARE * fixed)
  // A 4M-token unit claimed as 600 s on 64 devices (6,667 tokens/s) is credited one device at most: 600 s, not 64 × 600.
  const claim = creditRow(gpuRow({ tokens: 4e6, computeSeconds: 600, devices: 64, listedGpus: 64 }), floor)
  assert.ok(gpuHoursOf(600, claim) * 3600 <= 600 + 1e-9)
  // One node's many rows count once: a sandbagger filing 100 slow rows beside eight honest nodes moves nothing.
  const rows = [...Array.from({ length: 8 }, (_, i) => ({ node: `honest-${i}`, rate: 500_000 + i * 1000 })), ...Array.from({ length: 100 }, () => ({ node: 'sandbagger', rate: 100 }))]
  assert.equal(nodeRates(rows).length, 9)
  assert.equal(deviceFloor(nodeRates(rows), PARAMS).tokensPerSecond, 0.5 * 501_000, 'the third slowest of nine nodes: an honest one')
  // A node's rate is the median of its rows: one odd row of its own does not move it.
  assert.deepEqual(nodeRates([{ node: 'a', rate: 300_000 }, { node: 'a', rate: 1 }, { node: 'a', rate: 310_000 }, { node: 'b', rate: 0 }]), [300_000])
  // A run of fast GPUs still counts an honest slower one as GPU time (at 1 TFLOP/s), just fewer devices per claim.
  const fast = deviceFloor([2_000_000, 2_100_000, 1_900_000], PARAMS)
  assert.equal(fast.gpuTime, gpuTimeFloorTokensPerSecond(PARAMS))
  assert.ok(Math.abs(gpuTimeFloorTokensPerSecond(PARAMS) - fixed / 10) < 1e-9 * fixed)
  assert.deepEqual(creditRow(gpuRow({ tokens: 100_000 * 60, computeSeconds: 60 }), fast), { devices: null, cores: 0 })
  assert.deepEqual(creditRow(gpuRow({ tokens: 100_000 * 60, computeSeconds: 60, devices: 4, listedGpus: 4 }), fast), { devices: 1, cores: 0 })
})

test('the floor is read from the run\'s accepted single-GPU torch-cuda rows, one rate per node, and GPU-hours follow the credit', async () => {
  const gpuNode = async (peer: string, gpus: number): Promise<string> => (await db.insertInto('nodes').values({
    peer_id: peer, organization_id: orgId, name: peer, agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date(),
    hardware: JSON.stringify({ hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'EPYC', cpuCores: 64, memoryBytes: 1, gpus: Array.from({ length: gpus }, () => H100) })
  }).returning('id').executeTakeFirstOrThrow()).id
  const nodes = { a: await gpuNode('peer-a', 8), b: await gpuNode('peer-b', 1), c: await gpuNode('peer-c', 1), slow: await gpuNode('peer-slow', 1) }
  const cpuNode = (await db.insertInto('nodes').values({
    peer_id: 'peer-cpu', organization_id: orgId, name: 'cpu box', agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date(),
    hardware: JSON.stringify({ hostname: 'c', platform: 'linux', arch: 'x64', cpuModel: 'EPYC', cpuCores: 4, memoryBytes: 1, gpus: [] })
  }).returning('id').executeTakeFirstOrThrow()).id
  const row = async (node: string, tokens: number, seconds: number, extra: { executor?: string, devices?: number, creditedDevices?: number, creditedCores?: number, outcome?: 'accepted' | 'refused' } = {}): Promise<void> => {
    await db.transaction().execute(async (trx) => {
      await appendLedgerEntry(trx, {
        runId, round: 1, nodeId: node, peerId: node, organizationId: orgId, assignmentId: null, tokens, computeSeconds: seconds,
        outcome: extra.outcome ?? 'accepted', reason: extra.outcome === 'refused' ? 'ERR_X: no' : null, metadata: null, signature: null,
        executor: extra.executor ?? 'torch-cuda', devices: extra.devices ?? null, creditedDevices: extra.creditedDevices ?? null, creditedCores: extra.creditedCores ?? null
      })
    })
  }
  assert.equal((await loadDeviceFloor(db, runId, PARAMS)).source, 'fixed floor')
  await row(nodes.a, 300_000, 1)
  await row(nodes.a, 310_000, 1)
  await row(nodes.a, 290_000, 1)
  // Rows that say nothing about one GPU's rate: CPU rows, a torch-cuda claim from a machine that listed no GPU, multi-device rows, refusals.
  await row(nodes.a, 10, 1, { executor: 'torch-cpu' })
  await row(cpuNode, 10, 1)
  await row(cpuNode, 10, 1)
  await row(nodes.a, 16_000_000, 10, { devices: 8, creditedDevices: 8 })
  await row(nodes.a, 0, 0, { outcome: 'refused' })
  assert.equal((await loadDeviceFloor(db, runId, PARAMS)).source, 'fixed floor', 'three rows of one node are one node, not enough')
  await row(nodes.b, 280_000, 1)
  await row(nodes.c, 320_000, 1)
  assert.deepEqual(await loadDeviceFloor(db, runId, PARAMS), { tokensPerSecond: 140_000, gpuTime: gpuTimeFloorTokensPerSecond(PARAMS), source: 'run' })
  // A node filing many slow rows is one slow node among four: it sets the 25th percentile, but no lower than the clamp.
  for (let i = 0; i < 20; i++) await row(nodes.slow, 10, 1)
  assert.equal((await loadDeviceFloor(db, runId, PARAMS)).tokensPerSecond, MIN_FLOOR_SHARE * fixedFloorTokensPerSecond(PARAMS))
  const floor = await loadDeviceFloor(db, runId, PARAMS)

  // A report signing 8 devices whose rate shows fewer: the row keeps the claim and the credit, and hours use the credit.
  const credit = creditRow(gpuRow({ tokens: 450_000 * 3600, computeSeconds: 3600, devices: 8, listedGpus: 8 }), floor)
  await row(nodes.a, 450_000 * 3600, 3600, { devices: 8, creditedDevices: credit.devices!, creditedCores: credit.cores })
  // And a row of one token in an hour from a GPU node: written as one CPU core.
  const trickle = creditRow(gpuRow({ tokens: 1, computeSeconds: 3600 }), floor)
  await row(nodes.b, 1, 3600, { creditedCores: trickle.cores })
  const last = (await readLedger(db, runId)).slice(-2)
  assert.deepEqual(last.map((r) => [r.devices, r.creditedDevices, r.creditedCores]), [[8, 8, 0], [null, null, 1]])
  const { gpuHours, cpuCoreHours } = await runDeliveredHours(db, runId)
  // Rows before credited_cores are judged as written: 3 + 1 + 1 + 20 single-GPU seconds (and the
  // torch-cpu row's), 10 s × 8 credited; then 3600 s × 8 credited. The trickle is one core-hour.
  assert.ok(Math.abs(gpuHours - (3 + 2 + 20 + 80 + 8 * 3600) / 3600) < 1e-9, `${gpuHours}`)
  assert.ok(Math.abs(cpuCoreHours - (64 + 4 + 4 + 3600) / 3600) < 1e-9, `${cpuCoreHours}`)
})

test('an fp32 GPU on a real model is GPU time before the run has its own floor; a CPU-sized rate is not', () => {
  // 125M parameters: a T4 in float32 trains about 3 TFLOP/s, 4,000 tokens/s; the device floor (10 TFLOP/s) is 13,333.
  const params = 125e6
  const floor = deviceFloor([], params)
  assert.deepEqual(creditRow({ kind: 'gpu', devices: null, listedGpus: 1, cpuCores: 8, tokens: 4000 * 600, computeSeconds: 600, paramCount: params }, floor), { devices: null, cores: 0 })
  // 100 tokens/s (0.075 TFLOP/s) is what a few CPU cores do: one core of credit, whatever it lists.
  assert.deepEqual(creditRow({ kind: 'gpu', devices: null, listedGpus: 1, cpuCores: 8, tokens: 100 * 600, computeSeconds: 600, paramCount: params }, floor), { devices: null, cores: 1 })
})
