import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { openDatabase } from '../db/open-database.ts'
import type { Database } from '../db/schema.ts'
import { nodeDeviceClasses } from './node-classes.ts'

let db: Kysely<Database>
let close: () => Promise<void>
beforeAll(async () => { ({ db, close } = await openDatabase({ dataDir: 'memory://' })) })
afterAll(async () => { await close() })

test('a node\'s class is its newest report\'s executor on its hardware, whatever the run; unknown until it reports one', async () => {
  const org = await db.insertInto('organizations').values({ name: 'Class Lab' }).returning('id').executeTakeFirstOrThrow()
  const hardware = (gpu: string | null): string => JSON.stringify({ hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'EPYC 9654', cpuCores: 8, memoryBytes: 2 ** 34, gpus: gpu === null ? [] : [{ name: gpu, memoryMiB: 81_559 }] })
  const node = async (name: string, gpu: string | null): Promise<string> => (await db.insertInto('nodes').values({
    peer_id: `12D3KooW${name}`, organization_id: org.id, name, hardware: hardware(gpu), agent_version: 'test'
  }).returning('id').executeTakeFirstOrThrow()).id
  const gpuNode = await node('gpu', 'NVIDIA H100 80GB HBM3')
  const cpuNode = await node('cpu', null)
  const fresh = await node('fresh', null)
  const runs = await db.insertInto('runs').values([{ name: 'a', spec: '{}', updated_at: new Date() }, { name: 'b', spec: '{}', updated_at: new Date() }]).returning('id').execute()
  let seq = 0
  const report = async (nodeId: string, runId: string, executor: string | null, at: string): Promise<void> => {
    seq++
    await db.insertInto('ledger').values({
      run_id: runId, round: 1, node_id: nodeId, peer_id: 'p', tokens: 1, compute_seconds: 1, outcome: 'accepted',
      prev_hash: String(seq).padStart(64, '0'), hash: String(seq).padStart(64, '1'), executor, created_at: new Date(at)
    }).execute()
  }
  // The GPU node switched from torch on its CPU to CUDA, in another run; a later row without an executor does not count.
  await report(gpuNode, runs[0]!.id, 'torch-cpu', '2026-01-01T00:00:00Z')
  await report(gpuNode, runs[1]!.id, 'torch-cuda', '2026-01-02T00:00:00Z')
  await report(gpuNode, runs[0]!.id, null, '2026-01-03T00:00:00Z')
  await report(cpuNode, runs[0]!.id, 'typescript', '2026-01-01T00:00:00Z')
  assert.deepEqual(await nodeDeviceClasses(db, [fresh, gpuNode, cpuNode]), [null, 'torch-cuda:NVIDIA H100 80GB HBM3', 'typescript'])
  assert.deepEqual(await nodeDeviceClasses(db, []), [])
})
