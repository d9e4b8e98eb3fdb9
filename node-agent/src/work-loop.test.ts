import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { UnitDecline, WorkResponse, WorkUnit } from '@barnraise/protocol'
import { encodeShard, initialCheckpoint, presetConfig, sha256Hex } from '@barnraise/trainer'
import { BlobCache } from './blob-cache.ts'
import type { CoordinatorClient } from './coordinator-client.ts'
import type { Executor } from './executors/executor.ts'
import { createAgentHost } from './host.ts'
import { syntheticUnit } from './executors/synthetic-unit.ts'
import { UNIT_REFUSAL_CODES } from './executors/executor-error.ts'
import { createBatchSource } from './batch-source.ts'
import { runWorkLoop, usedRanges, vocabularyRefusal } from './work-loop.ts'

test('a unit whose shards use a larger vocabulary than its model is declined (ERR_BAD_INPUT), before the download and from the shards\' own headers', () => {
  const config = presetConfig('tiny')
  const unit = syntheticUnit(config, { innerSteps: 1, batchSize: 1, seqLen: 8 })
  assert.equal(vocabularyRefusal(unit), undefined)
  assert.equal(vocabularyRefusal(unit, new Map([['a'.repeat(64), 256]])), undefined)
  const claimed = vocabularyRefusal({ ...unit, shardVocabSize: 50257 })
  assert.equal(claimed?.code, 'ERR_BAD_INPUT')
  assert.match(claimed.message, /vocabulary of 50257, but the model embeds 256 token ids/)
  assert.ok(UNIT_REFUSAL_CODES.has(claimed.code))
  // A unit that understates its shards' vocabulary is caught once the shards are fetched.
  const fetched = vocabularyRefusal(unit, new Map([['a'.repeat(64), 256], ['b'.repeat(64), 1000]]))
  assert.equal(fetched?.code, 'ERR_BAD_INPUT')
  assert.match(fetched.message, /shard bbbbbbbbbbbb is tokenized with a vocabulary of 1000/)
})

test('a unit reads only the windows it trains on: ranges past them are neither fetched nor kept, and the batches are the same', () => {
  const config = presetConfig('tiny')
  // 3 steps × batch 2 = 6 windows of 9 tokens.
  const unit = syntheticUnit(config, { innerSteps: 3, batchSize: 2, seqLen: 8 })
  const a = 'a'.repeat(64)
  const b = 'b'.repeat(64)
  const c = 'c'.repeat(64)
  const ranges = [
    { shard: a, start: 0, end: 20 }, // 2 windows (2 tokens spare)
    { shard: b, start: 5, end: 10 }, // none: shorter than a window
    { shard: a, start: 100, end: 100 + 9 * 50 }, // 50 windows, 4 used
    { shard: c, start: 0, end: 9 * 1000 } // never read
  ]
  const used = usedRanges({ ...unit, ranges })
  assert.deepEqual(used.map((r) => [r.shard[0], r.start, r.end]), [['a', 0, 18], ['a', 100, 136]])
  // The batches drawn from the cut ranges are those drawn from the whole ones.
  const shard = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i % 251)
  const whole = new Map([[a, shard(10_000)], [b, shard(100)], [c, shard(10_000)]])
  const full = createBatchSource(ranges, whole, 2, 8)
  const cut = createBatchSource(used, whole, 2, 8)
  for (let step = 0; step < 3; step++) assert.deepEqual(cut(step), full(step), `step ${step}`)
})

test('a shard whose bytes hash as the run names but are not a token shard (a hostile organizer\'s URL manifest) declines the unit with the reason, instead of failing it for ever', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'barnraise-bad-shard-'))
  const libp2p = await createAgentHost(await generateKeyPair('Ed25519'))
  try {
    const config = presetConfig('tiny')
    const base = await initialCheckpoint(config, 7)
    // A shard's header with its magic broken: it hashes to what the unit names, it reads as nothing.
    const shard = encodeShard(Uint8Array.from({ length: 64 }, (_, i) => i), 256)
    shard[0] = 0x58
    const shardSha = sha256Hex(shard)
    await mkdir(join(dataDir, 'blobs'), { recursive: true })
    await writeFile(join(dataDir, 'blobs', base.sha256), base.bytes)
    await writeFile(join(dataDir, 'blobs', shardSha), shard)
    const unit: WorkUnit = { ...syntheticUnit(config, { innerSteps: 1, batchSize: 1, seqLen: 8 }), baseCheckpoint: base.sha256, ranges: [{ shard: shardSha, start: 0, end: 18 }] }
    const stop = new AbortController()
    const declines: Array<UnitDecline | undefined> = []
    const client = {
      requestWork: async (decline?: UnitDecline): Promise<Exclude<WorkResponse, { kind: 'refused' }>> => {
        declines.push(decline)
        if (declines.length === 1) return { kind: 'unit', unit }
        stop.abort()
        return { kind: 'wait', retryAfterMs: 1000, reason: 'done' }
      }
    }
    const executor: Executor = { name: 'nothing', kind: 'typescript', train: async () => { throw new Error('nothing is trained from a shard that does not read') } }
    // Every blob is on disk already: nothing is dialled (the coordinator address is never reached).
    const cache = new BlobCache(dataDir, libp2p, multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${libp2p.peerId.toString()}`))
    await runWorkLoop({ client: client as unknown as CoordinatorClient, cache, executor, key: await generateKeyPair('Ed25519'), peerId: libp2p.peerId.toString(), dataDir, signal: stop.signal, say: () => {}, setStatus: () => {} })
    assert.equal(declines.length, 2)
    assert.equal(declines[1]?.assignmentId, unit.assignmentId)
    assert.equal(declines[1]?.code, 'ERR_SHARD_UNAVAILABLE')
    assert.match(declines[1]?.message ?? '', /shard [0-9a-f]{12} .*ERR_BAD_MAGIC/)
  } finally {
    await libp2p.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
})

test('a wait reply longer than a timer holds does not make the agent poll in a loop: it sleeps at most MAX_WAIT_MS', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'barnraise-long-wait-'))
  const libp2p = await createAgentHost(await generateKeyPair('Ed25519'))
  const stop = new AbortController()
  try {
    let requests = 0
    const client = {
      requestWork: async (): Promise<Exclude<WorkResponse, { kind: 'refused' }>> => {
        requests++
        // Past 2^31 ms Node's timers fire after 1 ms.
        return { kind: 'wait', retryAfterMs: 2 ** 31 + 10, reason: 'hostile' }
      }
    }
    const executor: Executor = { name: 'nothing', kind: 'typescript', train: async () => { throw new Error('no unit is handed out') } }
    const cache = new BlobCache(dataDir, libp2p, multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${libp2p.peerId.toString()}`))
    const loop = runWorkLoop({ client: client as unknown as CoordinatorClient, cache, executor, key: await generateKeyPair('Ed25519'), peerId: libp2p.peerId.toString(), dataDir, signal: stop.signal, say: () => {}, setStatus: () => {} })
    await new Promise((resolve) => setTimeout(resolve, 500))
    stop.abort()
    await loop
    assert.equal(requests, 1, `asked ${requests} times in half a second`)
  } finally {
    stop.abort()
    await libp2p.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
})
