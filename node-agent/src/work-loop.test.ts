import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { BLOB_CHUNK_BYTES, BLOB_PROTOCOL, JsonStream, blobRequestSchema } from '@barnraise/protocol'
import type { UnitDecline, WorkResponse, WorkUnit } from '@barnraise/protocol'
import { encodeShard, initialCheckpoint, presetConfig, sha256Hex } from '@barnraise/trainer'
import { BlobCache } from './blob-cache.ts'
import type { CoordinatorClient } from './coordinator-client.ts'
import type { Executor } from './executors/executor.ts'
import { createAgentHost } from './host.ts'
import { syntheticUnit } from './executors/synthetic-unit.ts'
import { UNIT_REFUSAL_CODES } from './executors/executor-error.ts'
import { createBatchSource } from './batch-source.ts'
import { runWorkLoop, usedRanges, vocabularyRefusal, workState } from './work-loop.ts'
import type { WorkState } from './work-loop.ts'

/** A test agent: its data directory (with `blobs/`), its libp2p host, and its work loop. */
interface TestAgent {
  dataDir: string
  blobs: string
  libp2p: Libp2p
  /** Runs the work loop until `signal` aborts; its blobs come from `coordinator` (by default an address never reached: every input is on disk). */
  run: (o: { client: CoordinatorClient, executor: Executor, signal: AbortSignal, coordinator?: Multiaddr, state?: WorkState, say?: (line: string) => void }) => Promise<void>
}

/** Runs `body` with a fresh agent, then stops its host and removes its data directory. */
async function withAgent (name: string, body: (agent: TestAgent) => Promise<void>): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), `barnraise-${name}-`))
  const libp2p = await createAgentHost(await generateKeyPair('Ed25519'))
  try {
    const blobs = join(dataDir, 'blobs')
    await mkdir(blobs, { recursive: true })
    const peerId = libp2p.peerId.toString()
    const run: TestAgent['run'] = async (o) => {
      const cache = new BlobCache(dataDir, libp2p, o.coordinator ?? multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${peerId}`))
      await runWorkLoop({ client: o.client, cache, executor: o.executor, key: await generateKeyPair('Ed25519'), peerId, dataDir, signal: o.signal, say: o.say ?? (() => {}), setStatus: () => {}, ...(o.state !== undefined ? { state: o.state } : {}) })
    }
    await body({ dataDir, blobs, libp2p, run })
  } finally {
    await libp2p.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

/** A coordinator that hands out `unit` once, then stops the loop: `declines` holds what each request carried. */
function oneUnitThenStop (unit: WorkUnit, stop: AbortController): { client: CoordinatorClient, declines: Array<UnitDecline | undefined> } {
  const declines: Array<UnitDecline | undefined> = []
  const client = {
    requestWork: async (decline?: UnitDecline): Promise<Exclude<WorkResponse, { kind: 'refused' }>> => {
      declines.push(decline)
      if (declines.length === 1) return { kind: 'unit', unit }
      stop.abort()
      return { kind: 'wait', retryAfterMs: 1000, reason: 'done' }
    },
    sendReport: async () => ({ ok: true as const, outcome: 'accepted' as const, duplicate: false })
  }
  return { client: client as unknown as CoordinatorClient, declines }
}

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
  await withAgent('bad-shard', async ({ blobs, run }) => {
    const config = presetConfig('tiny')
    const base = await initialCheckpoint(config, 7)
    // A shard's header with its magic broken: it hashes to what the unit names, it reads as nothing.
    const shard = encodeShard(Uint8Array.from({ length: 64 }, (_, i) => i), 256)
    shard[0] = 0x58
    const shardSha = sha256Hex(shard)
    await writeFile(join(blobs, base.sha256), base.bytes)
    await writeFile(join(blobs, shardSha), shard)
    const unit: WorkUnit = { ...syntheticUnit(config, { innerSteps: 1, batchSize: 1, seqLen: 8 }), baseCheckpoint: base.sha256, ranges: [{ shard: shardSha, start: 0, end: 18 }] }
    const stop = new AbortController()
    const { client, declines } = oneUnitThenStop(unit, stop)
    const executor: Executor = { name: 'nothing', kind: 'typescript', train: async () => { throw new Error('nothing is trained from a shard that does not read') } }
    // Every blob is on disk already: nothing is dialled.
    await run({ client, executor, signal: stop.signal })
    assert.equal(declines.length, 2)
    assert.equal(declines[1]?.assignmentId, unit.assignmentId)
    assert.equal(declines[1]?.code, 'ERR_SHARD_UNAVAILABLE')
    assert.match(declines[1]?.message ?? '', /shard [0-9a-f]{12} .*ERR_BAD_MAGIC/)
  })
})

test('a report the coordinator is too busy to take (ERR_BUSY) is sent again until it is taken, not dropped', async () => {
  await withAgent('busy-report', async ({ blobs, run }) => {
    const config = presetConfig('tiny')
    const base = await initialCheckpoint(config, 3)
    const shard = encodeShard(Uint8Array.from({ length: 64 }, (_, i) => i), 256)
    await writeFile(join(blobs, base.sha256), base.bytes)
    await writeFile(join(blobs, sha256Hex(shard)), shard)
    const unit: WorkUnit = { ...syntheticUnit(config, { innerSteps: 1, batchSize: 1, seqLen: 8 }), baseCheckpoint: base.sha256, ranges: [{ shard: sha256Hex(shard), start: 0, end: 18 }] }
    const stop = new AbortController()
    const { client, declines } = oneUnitThenStop(unit, stop)
    const sent: string[] = []
    client.sendReport = async (header) => {
      sent.push(header.metadata.assignmentId)
      return sent.length < 3
        ? { ok: false as const, outcome: 'refused' as const, code: 'ERR_BUSY', message: 'the coordinator is already receiving 8192.0 MiB of reports' }
        : { ok: true as const, outcome: 'accepted' as const, duplicate: false }
    }
    const said: string[] = []
    const executor: Executor = { name: 'echo', kind: 'typescript', train: async (r) => ({ params: r.base.map((x) => x + 1e-3), lossCurve: [1], tokens: 8, computeSeconds: 1, executor: 'typescript' }) }
    await run({ client, executor, signal: stop.signal, say: (line) => { said.push(line) } })
    assert.deepEqual(sent, [unit.assignmentId, unit.assignmentId, unit.assignmentId], 'sent until taken')
    assert.equal(said.filter((l) => l.includes('report not taken yet')).length, 2)
    assert.ok(said.some((l) => l.includes('report accepted')), said.join('\n'))
    assert.equal(declines[1], undefined, 'the unit was not declined')
  })
})

test('a wait reply longer than a timer holds does not make the agent poll in a loop: it sleeps at most MAX_WAIT_MS', async () => {
  await withAgent('long-wait', async ({ run }) => {
    const stop = new AbortController()
    let requests = 0
    const client = {
      requestWork: async (): Promise<Exclude<WorkResponse, { kind: 'refused' }>> => {
        requests++
        // Past 2^31 ms Node's timers fire after 1 ms.
        return { kind: 'wait', retryAfterMs: 2 ** 31 + 10, reason: 'hostile' }
      }
    }
    const executor: Executor = { name: 'nothing', kind: 'typescript', train: async () => { throw new Error('no unit is handed out') } }
    const loop = run({ client: client as unknown as CoordinatorClient, executor, signal: stop.signal })
    await new Promise((resolve) => setTimeout(resolve, 500))
    stop.abort()
    await loop
    assert.equal(requests, 1, `asked ${requests} times in half a second`)
  })
})

test('a restarted agent drops what its previous process held (its last base and shards, a look ahead\'s inputs, partial files) once a unit shows what is used; the unit\'s own inputs stay', async () => {
  await withAgent('restart', async ({ blobs, run }) => {
    const config = presetConfig('tiny')
    const runId = crypto.randomUUID()
    const units: WorkUnit[] = []
    for (const seed of [1, 2, 3]) {
      const base = await initialCheckpoint(config, seed)
      const shard = encodeShard(Uint8Array.from({ length: 64 }, (_, i) => (i * seed) % 256), 256)
      await writeFile(join(blobs, base.sha256), base.bytes)
      await writeFile(join(blobs, sha256Hex(shard)), shard)
      units.push({ ...syntheticUnit(config, { innerSteps: 1, batchSize: 1, seqLen: 8 }), runId, round: seed, baseCheckpoint: base.sha256, ranges: [{ shard: sha256Hex(shard), start: 0, end: 18 }] })
    }
    // Left by a process stopped mid-way: downloads and a write of a blob nothing names any more.
    const gone = 'd'.repeat(64)
    for (const suffix of ['.part', '.swarm', '.put']) await writeFile(join(blobs, `${gone}${suffix}`), 'x')
    await writeFile(join(blobs, 'keep-me.txt'), 'not the cache\'s')
    // Unit 1 is what the previous process trained last, unit 3 what its look ahead fetched for a
    // unit that never ran; this process is handed unit 2.
    const stop = new AbortController()
    const { client } = oneUnitThenStop(units[1]!, stop)
    const executor: Executor = {
      name: 'echo',
      kind: 'typescript',
      train: async (r) => ({ params: r.base.map((x) => x + 1e-3), lossCurve: [1], tokens: 8, computeSeconds: 1, executor: 'typescript' })
    }
    // Nothing is dialled: unit 2's inputs are on disk.
    await run({ client, executor, signal: stop.signal })
    assert.deepEqual((await readdir(blobs)).sort(), [units[1]!.baseCheckpoint, units[1]!.ranges[0]!.shard, 'keep-me.txt'].sort(), 'only the unit\'s base and shard, and what is not the cache\'s')
  })
})

test('a unit whose base the coordinator announces at another size than its model\'s checkpoint is declined (ERR_BLOB_SIZE) before the bytes come', async () => {
  // A hostile coordinator: every blob is 64 MiB of zeros (a tiny model's base is 0.5 MiB).
  const hostile = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
  const size = 64 * 1024 * 1024
  await hostile.handle(BLOB_PROTOCOL, async (stream) => {
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    try {
      const request = await messages.read(blobRequestSchema, 10_000)
      await messages.write({ ok: true, size, offset: request.offset })
      for (let at = request.offset; at < size; at += BLOB_CHUNK_BYTES) await messages.writeFrame(new Uint8Array(BLOB_CHUNK_BYTES), 10_000)
      await messages.close()
    } catch {
      stream.abort(new Error('closed'))
    }
  })
  await withAgent('base-size', async ({ blobs, run }) => {
    const config = presetConfig('tiny')
    const shard = encodeShard(Uint8Array.from({ length: 64 }, (_, i) => i), 256)
    await writeFile(join(blobs, sha256Hex(shard)), shard)
    const unit: WorkUnit = { ...syntheticUnit(config, { innerSteps: 1, batchSize: 1, seqLen: 8 }), baseCheckpoint: 'b'.repeat(64), ranges: [{ shard: sha256Hex(shard), start: 0, end: 18 }] }
    const stop = new AbortController()
    const { client, declines } = oneUnitThenStop(unit, stop)
    const executor: Executor = { name: 'nothing', kind: 'typescript', train: async () => { throw new Error('nothing is trained without a base') } }
    await run({ client, executor, signal: stop.signal, coordinator: hostile.getMultiaddrs()[0]! })
    assert.equal(declines[1]?.code, 'ERR_BLOB_SIZE')
    assert.match(declines[1]?.message ?? '', /the unit's base checkpoint bbbbbbbbbbbb is 67108864 bytes, not the \d+ it must be/)
    assert.ok(!(await readdir(blobs)).some((f) => f.startsWith('b'.repeat(64))), 'nothing of it kept')
  }).finally(async () => { await hostile.stop() })
})

test('what a look ahead fetched for the next unit survives a reconnect that hands the current unit out again; a process that knows nothing of it drops it', async () => {
  await withAgent('ahead', async ({ blobs, run }) => {
    const config = presetConfig('tiny')
    const runId = crypto.randomUUID()
    const inputs: Array<{ unit: WorkUnit, files: Array<[string, Uint8Array]> }> = []
    for (const seed of [1, 2]) {
      const base = await initialCheckpoint(config, seed)
      const shard = encodeShard(Uint8Array.from({ length: 64 }, (_, i) => (i * seed) % 256), 256)
      const unit: WorkUnit = { ...syntheticUnit(config, { innerSteps: 1, batchSize: 1, seqLen: 8 }), runId, round: seed, overlap: 'delayed', baseCheckpoint: base.sha256, ranges: [{ shard: sha256Hex(shard), start: 0, end: 18 }] }
      inputs.push({ unit, files: [[base.sha256, base.bytes], [sha256Hex(shard), shard]] })
    }
    const [current, next] = inputs as [typeof inputs[0], typeof inputs[0]]
    for (const [sha, bytes] of current.files) await writeFile(join(blobs, sha), bytes)
    const nextOnDisk = async (): Promise<boolean> => {
      const names = await readdir(blobs)
      return next.files.every(([sha]) => names.includes(sha))
    }
    /** One connection's work loop: it is handed `current`; `ahead` answers the look ahead. */
    const connection = async (state: WorkState | undefined, ahead: boolean): Promise<void> => {
      const stop = new AbortController()
      let answered: () => void = () => {}
      const lookedAhead = new Promise<void>((resolve) => { answered = resolve })
      let handed = false
      let trained = false
      const client = {
        requestWork: async (): Promise<Exclude<WorkResponse, { kind: 'refused' }>> => {
          if (!handed) { handed = true; return { kind: 'unit', unit: current.unit } }
          if (!trained && ahead) {
            // The look ahead's question. The next unit's inputs "downloaded" (the coordinator's
            // blob store, on this disk) as its fetch finds them.
            for (const [sha, bytes] of next.files) await writeFile(join(blobs, sha), bytes)
            answered()
            return { kind: 'unit', unit: next.unit }
          }
          if (!trained) return { kind: 'wait', retryAfterMs: 60_000, reason: 'no next unit yet' }
          // The link drops: the session reconnects and calls the loop again.
          stop.abort()
          return { kind: 'wait', retryAfterMs: 1000, reason: 'done' }
        },
        sendReport: async () => ({ ok: true as const, outcome: 'accepted' as const, duplicate: false })
      }
      const executor: Executor = {
        name: 'echo',
        kind: 'typescript',
        train: async (r) => {
          if (ahead) await lookedAhead
          trained = true
          return { params: r.base.map((x) => x + 1e-3), lossCurve: [1], tokens: 8, computeSeconds: 1, executor: 'typescript' }
        }
      }
      await run({ client: client as unknown as CoordinatorClient, executor, signal: stop.signal, ...(state !== undefined ? { state } : {}) })
    }
    const session = workState()
    await connection(session, true)
    assert.ok(await nextOnDisk(), 'the look ahead fetched the next unit\'s inputs')
    // Reconnected, the node is handed the unit it was training again: the next one's inputs stay.
    await connection(session, false)
    assert.ok(await nextOnDisk(), 'kept across the reconnect')
    // A new process (nothing known of the look ahead) handed the same unit: they are dropped.
    await connection(undefined, false)
    assert.equal(await nextOnDisk(), false, 'dropped by a process that does not know them')
    assert.deepEqual((await readdir(blobs)).sort(), current.files.map(([sha]) => sha).sort())
  })
})
