import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initialCheckpoint, presetConfig } from '@barnraise/trainer'
import { openDatabase } from '../db/open-database.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { BackgroundEvaluation } from './background-evaluation.ts'

test('a checkpoint asked for again while it waits or is measured is measured once; a newer one replaces an older one still waiting', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-evaluation-'))
  const database = await openDatabase({ dataDir: 'memory://' })
  try {
    const store = new DiskBlobStore(join(dir, 'blobs'))
    const reads: string[] = []
    const blobs = Object.assign(Object.create(store) as DiskBlobStore, { get: async (sha: string) => { reads.push(sha); return await store.get(sha) }, size: async (sha: string) => await store.size(sha) })
    const config = presetConfig('tiny')
    const shas = [] as string[]
    for (const seed of [1, 2, 3]) shas.push(await store.put((await initialCheckpoint(config, seed)).bytes))
    const skipped: unknown[] = []
    const log = { info: (msg: string, fields?: Record<string, unknown>) => { if (msg.startsWith('validation skipped')) skipped.push(fields) }, warn: () => {}, error: () => {}, child: () => log }
    const measured: string[] = []
    const evaluation = new BackgroundEvaluation({ db: database.db, blobs, log, onMeasured: (runId) => { measured.push(runId) } })
    const job = (sha: string, runId = '00000000-0000-4000-8000-000000000001') => ({ runId, sha, config, batches: [Int32Array.from({ length: 2 * 9 }, (_, i) => i % 200)], batchSize: 2, seqLen: 8 })
    evaluation.schedule(job(shas[0]!))
    // The first is on the worker now; asking for it again, as the engine's ticks do, adds nothing.
    evaluation.schedule(job(shas[0]!))
    evaluation.schedule(job(shas[1]!))
    evaluation.schedule(job(shas[1]!))
    // A newer checkpoint of the run replaces the one still waiting.
    evaluation.schedule(job(shas[2]!))
    await evaluation.idle()
    assert.deepEqual(reads, [shas[0], shas[2]])
    assert.equal(skipped.length, 1)
    assert.equal(measured.length, 2)
    await evaluation.stop()
  } finally {
    await database.close()
    await rm(dir, { recursive: true, force: true })
  }
})
