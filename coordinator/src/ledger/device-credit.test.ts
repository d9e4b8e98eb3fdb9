import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { openTestStore } from '../../../test/support/store.ts'
import type { Database } from '../db/schema.ts'
import { runDeliveredHours } from '../pledges/run-deliveries.ts'
import { MIN_CORE_FLOPS, MIN_DEVICE_FLOPS, creditedCores, creditedDevices, deviceFloor, loadDeviceFloor } from './device-credit.ts'
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

test('the floor is read from the run\'s accepted single-GPU torch-cuda rows, and GPU-hours follow the credited count', async () => {
  const node = (await db.insertInto('nodes').values({
    peer_id: 'peer-gpu', organization_id: orgId, name: 'gpu box', agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date(),
    hardware: JSON.stringify({ hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'EPYC', cpuCores: 64, memoryBytes: 1, gpus: Array.from({ length: 8 }, () => ({ name: 'NVIDIA H100', memoryMiB: 81_559 })) })
  }).returning('id').executeTakeFirstOrThrow()).id
  const cpuNode = (await db.insertInto('nodes').values({
    peer_id: 'peer-cpu', organization_id: orgId, name: 'cpu box', agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date(),
    hardware: JSON.stringify({ hostname: 'c', platform: 'linux', arch: 'x64', cpuModel: 'EPYC', cpuCores: 4, memoryBytes: 1, gpus: [] })
  }).returning('id').executeTakeFirstOrThrow()).id
  const row = async (tokens: number, seconds: number, extra: { executor?: string, devices?: number, creditedDevices?: number, outcome?: 'accepted' | 'refused', cpu?: boolean } = {}): Promise<void> => {
    await db.transaction().execute(async (trx) => {
      await appendLedgerEntry(trx, {
        runId, round: 1, nodeId: extra.cpu === true ? cpuNode : node, peerId: extra.cpu === true ? 'peer-cpu' : 'peer-gpu', organizationId: orgId, assignmentId: null, tokens, computeSeconds: seconds,
        outcome: extra.outcome ?? 'accepted', reason: extra.outcome === 'refused' ? 'ERR_X: no' : null, metadata: null, signature: null,
        executor: extra.executor ?? 'torch-cuda', devices: extra.devices ?? null, creditedDevices: extra.creditedDevices ?? null
      })
    })
  }
  assert.equal((await loadDeviceFloor(db, runId, PARAMS)).source, 'fixed floor')
  await row(300_000, 1)
  await row(280_000, 1)
  // Rows that say nothing about one GPU's rate: CPU rows, a torch-cuda claim from a machine that listed no GPU, multi-device rows, refusals.
  await row(10, 1, { executor: 'torch-cpu' })
  await row(10, 1, { cpu: true })
  await row(10, 1, { cpu: true })
  await row(16_000_000, 10, { devices: 8, creditedDevices: 8 })
  await row(0, 0, { outcome: 'refused' })
  assert.equal((await loadDeviceFloor(db, runId, PARAMS)).source, 'fixed floor', 'two single-GPU rows are not enough')
  await row(320_000, 1)
  const floor = await loadDeviceFloor(db, runId, PARAMS)
  assert.deepEqual(floor, { tokensPerSecond: 140_000, source: 'run' })

  // A report signing 8 devices whose rate shows 3: the row keeps the claim and the credit, and hours use the credit.
  await row(450_000 * 3600, 3600, { devices: 8, creditedDevices: creditedDevices(8, 450_000 * 3600, 3600, floor) })
  const last = (await readLedger(db, runId)).at(-1)!
  assert.equal(last.devices, 8)
  assert.equal(last.creditedDevices, 3)
  const { gpuHours } = await runDeliveredHours(db, runId)
  // 3 single-GPU seconds + 10 s × 8 credited + 3600 s × 3 credited.
  assert.ok(Math.abs(gpuHours - (3 + 80 + 3 * 3600) / 3600) < 1e-9, `${gpuHours}`)
})
