import { afterAll, beforeAll, test } from 'vitest'
import { randomUUID } from 'node:crypto'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { countParams, encodeShard, initParams, presetConfig } from '@barnraise/trainer'
import { openTestStore } from '../../../test/support/store.ts'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { BackgroundEvaluation } from '../checkpoints/background-evaluation.ts'
import { checkpointBytes } from '../checkpoints/checkpoint-weights.ts'
import { createLogger } from '../log.ts'
import { INLINE_EVAL_FLOPS, INLINE_SCORE_FLOPS, evaluationFlops, scoringFlops } from '../runs/run-plan.ts'
import type { StoredRunSpec } from '../runs/runs.ts'
import { RunCache } from './run-cache.ts'

let store: Awaited<ReturnType<typeof openTestStore>>
let db: Kysely<Database>
let runId: string

// The demo's small model at seq 64: both its validation loss and a report's scoring fit the default 2 GFLOP budgets.
const config = presetConfig('small')
const spec = {
  modelConfig: config, paramCount: countParams(config), vocabSize: config.vocab_size, evalBatches: 4, minNodes: 1,
  recipe: { innerSteps: 10, batchSize: 4, seqLen: 64 }, validationShard: { sha256: 'v'.repeat(64), tokens: 4096 }, defences: { screening: true }
} as unknown as StoredRunSpec
// The validation shard, served by a stand-in blob store: the inline loss reads it.
const validation = encodeShard(Array.from({ length: 4096 }, (_, i) => (i * 37) % 256), 256)
const blobs = { get: async () => validation } as unknown as BlobStore
// Only its presence matters here: a loss over the budget is left to it.
const evaluation = {} as BackgroundEvaluation
const log = createLogger('run-cache-test')

beforeAll(async () => {
  store = await openTestStore('run-cache')
  db = store.db
  runId = (await db.insertInto('runs').values({ name: 'r', status: 'running', spec: JSON.stringify(spec), failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
}, 60_000)
afterAll(async () => { await store?.close() })

test('the inline budgets for validation and scoring are independent: each flag moves only its own work', async () => {
  assert.ok(evaluationFlops(spec) <= INLINE_EVAL_FLOPS && scoringFlops(spec) <= INLINE_SCORE_FLOPS, 'both fit the defaults')
  assert.equal(INLINE_SCORE_FLOPS, INLINE_EVAL_FLOPS, 'the scoring budget defaults to what the shared flag was')
  const flat = new Float32Array(spec.paramCount)
  const defaults = new RunCache({ db, blobs, log, evaluation })
  assert.equal(await defaults.scoresItself(runId), true)
  assert.equal(typeof await defaults.validationLoss(runId, flat), 'number', 'measured on the event loop')

  // --inline-eval-gflop 0: every loss goes to the worker thread, and the coordinator still scores inline.
  const noInlineEval = new RunCache({ db, blobs, log, evaluation, inlineEvalFlops: 0 })
  assert.equal(await noInlineEval.validationLoss(runId, flat), undefined, 'left to the worker thread')
  assert.equal(await noInlineEval.scoresItself(runId), true)

  // --inline-score-gflop 0: nodes score the reports, and the loss is still measured inline.
  const noInlineScore = new RunCache({ db, blobs, log, evaluation, inlineScoreFlops: 0 })
  assert.equal(await noInlineScore.scoresItself(runId), false)
  assert.equal(await noInlineScore.nodesScore(runId), true)
  assert.equal(typeof await noInlineScore.validationLoss(runId, flat), 'number', 'measured on the event loop')

  // A large scoring budget with no inline validation: an operator's "score here, measure losses elsewhere".
  const scoreOnly = new RunCache({ db, blobs, log, evaluation, inlineEvalFlops: 0, inlineScoreFlops: 1e12 })
  assert.equal(await scoreOnly.scoresItself(runId), true)
  assert.equal(await scoreOnly.validationLoss(runId, flat), undefined)
})

test('a close takes the base from the cache rather than a copy, and the cache reads it again if asked before the next base comes', async () => {
  const weights = initParams(config, 1).flat
  const sha = await store.blobs.put(checkpointBytes(config, weights))
  const cache = new RunCache({ db, blobs: store.blobs, log })
  const base = await cache.base(runId, sha)
  const taken = await cache.takeBase(runId, sha)
  assert.equal(taken, base, 'the cached weights themselves')
  // The close's outer step changes them in place: the cache no longer offers them as checkpoint `sha`.
  taken.fill(0.5)
  const reread = await cache.base(runId, sha)
  assert.notEqual(reread, taken)
  assert.deepEqual(reread, weights, 'checkpoint sha\'s own weights, read again')
  const next = new Float32Array(weights.length).fill(0.25)
  await cache.advanceBase(runId, 'a round', 'f'.repeat(64), next)
  assert.equal(await cache.base(runId, 'f'.repeat(64)), next, 'the next base is the close\'s θ, kept as it is')
})

test('the next round opened sums in the spent sum of the round closed before it, zeroed; one opened later, or beside an open round, gets its own', async () => {
  const cache = new RunCache({ db, blobs: store.blobs, log })
  const next = new Float32Array(spec.paramCount)
  /** Opens a round (numbered past 1: no held-out direction to measure), folds into it, and closes it as the engine does. */
  const closed = async (roundId: string, number: number): Promise<Float32Array> => {
    await cache.openRound(runId, roundId, number)
    const acc = await cache.accumulator(runId, roundId)
    acc.fold(new Float32Array(spec.paramCount).fill(0.5), 10, undefined)
    const applied = await acc.takeUpdateInSlices({ rule: 'mean' })
    assert.ok(applied === acc.sum, 'the mean in the sum\'s memory')
    await cache.advanceBase(runId, roundId, 'f'.repeat(64), next)
    return applied
  }
  const spent = await closed(randomUUID(), 2)
  const second = randomUUID()
  await cache.openRound(runId, second, 3)
  const reused = (await cache.accumulator(runId, second)).sum
  // Compared as references: a failed deepEqual-style message over 20M values takes minutes.
  assert.ok(reused === spent, 'the spent sum\'s memory')
  assert.ok(reused.every((x) => x === 0), 'zeroed')
  // Overlapped: a round opened while another is open sums in memory of its own.
  const beside = randomUUID()
  await cache.openRound(runId, beside, 4)
  assert.ok((await cache.accumulator(runId, beside)).sum !== reused)
  // The engine's step ended with no round opened: the spent sum goes, and a later round makes its own.
  const alone = await closed(randomUUID(), 5)
  cache.releaseSpareSum(runId)
  const later = randomUUID()
  await cache.openRound(runId, later, 6)
  assert.ok((await cache.accumulator(runId, later)).sum !== alone)
})
