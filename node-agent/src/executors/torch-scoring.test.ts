// Scoring another node's report with the torch executor, against the real Python child (CPU,
// torch 1.13 in CI): the same task scored by the TypeScript worker and by the child agree to a
// tenth of what the coordinator tolerates between two scorers, and every way a task can be bad
// or too large is answered with no losses instead of an error out of the work loop. Tiny model,
// four windows: CI has two cores.
import { afterAll, beforeAll, describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SCORER_AGREEMENT, encodePseudoGradient } from '@barnraise/protocol'
import type { CodecName, LlamaConfig, ScoreResult, ScoringTask } from '@barnraise/protocol'
import { demoCorpusShards, encodeShard, initParams, presetConfig, sha256Hex, storedCheckpointBytes } from '@barnraise/trainer'
import type { BlobCache } from '../blob-cache.ts'
import { scoreReport } from '../scoring-task.ts'
import { TorchExecutor } from './torch-executor.ts'
import { TypeScriptExecutor } from './typescript-executor.ts'
import { syntheticUnit } from './synthetic-unit.ts'
import { createBatchSource } from '../batch-source.ts'

const tiny = presetConfig('tiny')
const BATCH = 4
const SEQ = 32

/** Blobs by sha256, served as the blob cache would; `fetched` says what a call asked for. */
class Blobs {
  readonly map = new Map<string, Uint8Array>()
  readonly fetched: string[] = []
  add (bytes: Uint8Array): string {
    const sha = sha256Hex(bytes)
    this.map.set(sha, bytes)
    return sha
  }

  get cache (): BlobCache {
    return {
      get: async (sha: string) => {
        this.fetched.push(sha)
        const bytes = this.map.get(sha)
        if (bytes === undefined) throw new Error(`no blob ${sha}`)
        return bytes
      },
      drop: async () => {}
    } as unknown as BlobCache
  }
}

interface Made { task: ScoringTask, blobs: Blobs }

/** A scoring task of `config`: a real report (Δ of a few TypeScript inner steps from the base), four held-out windows. */
async function makeTask (o: { config?: LlamaConfig, codec?: CodecName, windows?: Int32Array, windowsVocab?: number, checkpointConfig?: LlamaConfig, payload?: Uint8Array, deadline?: Date } = {}): Promise<Made> {
  const config = o.config ?? tiny
  const blobs = new Blobs()
  const base = initParams(o.checkpointConfig ?? config, 7).flat
  const { train, validation } = await demoCorpusShards()
  let payload = o.payload
  if (payload === undefined) {
    const unit = syntheticUnit(config, { innerSteps: 6, batchSize: BATCH, seqLen: SEQ, lr: 3e-3, warmupSteps: 1 })
    const tokens = train[0]!.tokens
    const id = 'f'.repeat(64)
    const batches = createBatchSource([{ shard: id, start: 0, end: tokens.length }], new Map([[id, tokens]]), BATCH, SEQ)
    const dir = await mkdtemp(join(tmpdir(), 'barnraise-scoring-ts-'))
    try {
      const local = await new TypeScriptExecutor({ threads: 1 }).train({ unit, base, batches, stateDir: dir, onProgress: () => {}, signal: new AbortController().signal })
      payload = encodePseudoGradient(o.codec ?? 'int8', base.map((x, i) => x - local.params[i]!))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  const windows = o.windows ?? Int32Array.from(validation.tokens.subarray(0, BATCH * (SEQ + 1)))
  const task: ScoringTask = {
    taskId: randomUUID(),
    runId: randomUUID(),
    runName: 'scored',
    round: 1,
    baseCheckpoint: blobs.add(storedCheckpointBytes(o.checkpointConfig ?? config, base)),
    modelConfig: config,
    report: blobs.add(payload),
    codec: o.codec ?? 'int8',
    windows: blobs.add(encodeShard(windows, o.windowsVocab ?? 256)),
    batchSize: BATCH,
    seqLen: SEQ,
    deadline: (o.deadline ?? new Date(Date.now() + 3_600_000)).toISOString()
  }
  return { task, blobs }
}

function scores (r: ScoreResult | { malformed: string }): ScoreResult {
  if ('malformed' in r) throw new Error(`expected scores, got malformed: ${r.malformed}`)
  return r
}

function malformed (r: ScoreResult | { malformed: string }): string {
  assert.ok('malformed' in r, `expected a refusal, got scores ${JSON.stringify(r)}`)
  return r.malformed
}

describe('scoring with the torch executor', () => {
  let dir = ''
  let torch: TorchExecutor
  const signal = new AbortController().signal
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'barnraise-torch-scoring-'))
    // A short abort grace: the hung-child test below waits for the kill.
    // A control bound of a minute: a hung child past a deadline already gone is killed then, not after ten.
    torch = await TorchExecutor.start({ device: 'cpu', threads: 1, timeouts: { abortGraceMs: 500, controlMs: 60_000 } })
  })
  afterAll(async () => {
    await torch.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('the same task scored by the TypeScript worker and by the torch child: base, after (base − Δ) and reversed (base + Δ) agree within a tenth of what scorers may differ by', async () => {
    for (const codec of ['int8', 'fp32'] as const) {
      const { task, blobs } = await makeTask({ codec })
      const ts = scores(await scoreReport(blobs.cache, task, signal))
      const py = scores(await scoreReport(blobs.cache, task, signal, { executor: torch, dir }))
      assert.equal(py.taskId, task.taskId)
      const tolerance = SCORER_AGREEMENT / 10 * ts.base!
      for (const k of ['base', 'after', 'reversed'] as const) {
        assert.ok(ts[k] !== null && py[k] !== null, `${codec} ${k}: ${ts[k]} and ${py[k]}`)
        assert.ok(Math.abs(ts[k]! - py[k]!) <= tolerance, `${codec} ${k}: TypeScript ${ts[k]}, torch ${py[k]} (apart ${Math.abs(ts[k]! - py[k]!)}, allowed ${tolerance})`)
      }
      // Not a vacuous check: the update helps, and base − Δ and base + Δ lie far more than the
      // tolerance apart, so swapping the signs of the scales would fail above.
      assert.ok(ts.after! < ts.base! - 10 * tolerance && Math.abs(ts.reversed! - ts.after!) > 10 * tolerance, `${codec}: ${JSON.stringify(ts)}`)
    }
    // The child's files are gone; the folder stays for the next task.
    assert.deepEqual(await readdir(dir), [])
  })

  test('a task too large for this machine is refused before anything is fetched; one only torch refuses is scored by the TypeScript worker', async () => {
    // 125M parameters: past the TypeScript forward pass, and --max-memory leaves torch 1 GiB.
    const big = presetConfig('125m')
    const bigTask = (await makeTask({ payload: new Uint8Array(4) })).task
    const blobs = new Blobs()
    const r = await scoreReport(blobs.cache, { ...bigTask, modelConfig: big }, signal, { executor: torch, dir, maxMemoryBytes: 2 ** 30 })
    assert.match(malformed(r), /scoring would need \d+\.\d GiB of memory; --max-memory allows 1\.0 GiB/)
    assert.deepEqual(blobs.fetched, [], 'refused before any download')
    // The tiny task: torch counts 3.2 MB (the agent's copies of weights and Δ share the host on
    // torch-cpu), the TypeScript worker 2.7 MB. A cap between them leaves it to the worker.
    const { task, blobs: tiny } = await makeTask()
    const byWorker = scores(await scoreReport(tiny.cache, task, signal, { maxMemoryBytes: 3_000_000 }))
    assert.deepEqual(scores(await scoreReport(tiny.cache, task, signal, { executor: torch, dir, maxMemoryBytes: 3_000_000 })), byWorker, 'the TypeScript worker\'s own numbers')
    assert.match(malformed(await scoreReport(tiny.cache, task, signal, { executor: torch, dir, maxMemoryBytes: 2_000_000 })), /--max-memory allows/)
  })

  test('bad windows, a report or checkpoint that does not fit the model, windows past the model\'s positions: each answered with no losses, and the child goes on', async () => {
    const short = await makeTask({ windows: new Int32Array(BATCH * (SEQ + 1) - 1) })
    assert.match(malformed(await scoreReport(short.blobs.cache, short.task, signal, { executor: torch, dir })), /token ids for 4 windows of 33/)
    // A shard of a larger vocabulary than the model's.
    const past = await makeTask({ windows: new Int32Array(BATCH * (SEQ + 1)).fill(300), windowsVocab: 512, payload: new Uint8Array(4) })
    assert.match(malformed(await scoreReport(past.blobs.cache, past.task, signal, { executor: torch, dir })), /past the vocabulary/)
    const payload = await makeTask({ payload: new Uint8Array(12) })
    assert.match(malformed(await scoreReport(payload.blobs.cache, payload.task, signal, { executor: torch, dir })), /int8 payload for 107328 values must be \d+ bytes, got 12/, 'a payload that does not decode for the model')
    // Weights of another model: the child refuses them by name and shape (ERR_BAD_INPUT).
    const other = await makeTask({ checkpointConfig: { ...tiny, intermediate_size: 128 }, payload: encodePseudoGradient('int8', new Float32Array(initParams(tiny, 1).flat.length).fill(1e-3)) })
    assert.match(malformed(await scoreReport(other.blobs.cache, other.task, signal, { executor: torch, dir })), /^ERR_BAD_INPUT: weights .*shape/)
    // Windows longer than the model's positions: refused in the child, not in the agent.
    const positions = await makeTask({ config: { ...tiny, max_position_embeddings: 16 }, payload: encodePseudoGradient('int8', new Float32Array(initParams(tiny, 1).flat.length).fill(1e-3)) })
    assert.match(malformed(await scoreReport(positions.blobs.cache, positions.task, signal, { executor: torch, dir })), /^ERR_BAD_INPUT: .*max_position_embeddings/)
    const pid = torch.childPid
    const { task, blobs } = await makeTask()
    scores(await scoreReport(blobs.cache, task, signal, { executor: torch, dir }))
    assert.equal(torch.childPid, pid, 'refusals are answers: the same child serves the next task')
    assert.deepEqual(await readdir(dir), [])
  })

  test('a hung child does not hold scoring past the round\'s deadline: the task is abandoned, the child killed, and the next task has a fresh one', async () => {
    const { task, blobs } = await makeTask({ deadline: new Date(Date.now() + 60_000) })
    const pid = torch.childPid!
    process.kill(pid, 'SIGSTOP')
    const started = Date.now()
    try {
      // The deadline must still be ahead when the losses are asked for, after the report's
      // download and decoding on a worker thread (2 s were not, once, on a loaded 2-core machine).
      const r = await scoreReport(blobs.cache, { ...task, deadline: new Date(Date.now() + 10_000).toISOString() }, signal, { executor: torch, dir })
      assert.match(malformed(r), /^ERR_SCORING_TOO_SLOW: /)
      assert.ok(Date.now() - started < 30_000, `gave up after ${Date.now() - started} ms`)
      // Killed after the abort grace (500 ms here): SIGKILL reaches a stopped process.
      for (let i = 0; i < 100; i++) {
        try { process.kill(pid, 0) } catch { break }
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the hung child was killed')
    } finally {
      // Should the executor not have killed it, let it go on (and close) after the test.
      try { process.kill(pid, 'SIGCONT') } catch {}
    }
    scores(await scoreReport(blobs.cache, task, signal, { executor: torch, dir }))
    assert.notEqual(torch.childPid, pid)
  })

  test('a hung child past a deadline already gone by this clock (a skewed one) is killed at the control bound, not waited on for ever', async () => {
    const quick = await TorchExecutor.start({ device: 'cpu', threads: 1, timeouts: { abortGraceMs: 500, controlMs: 3_000 } })
    const { task, blobs } = await makeTask({})
    // A first task starts the child; the next is handed out with its round's deadline already past here.
    scores(await scoreReport(blobs.cache, task, signal, { executor: quick, dir }))
    const pid = quick.childPid!
    process.kill(pid, 'SIGSTOP')
    try {
      const r = await scoreReport(blobs.cache, { ...task, deadline: new Date(Date.now() - 1_000).toISOString() }, signal, { executor: quick, dir })
      assert.match(malformed(r), /^ERR_CHILD_HUNG: the torch child .* for 3 s on a flush request/)
      for (let i = 0; i < 100; i++) {
        try { process.kill(pid, 0) } catch { break }
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the hung child was killed')
      scores(await scoreReport(blobs.cache, task, signal, { executor: quick, dir }))
      assert.notEqual(quick.childPid, pid, 'the next task had a fresh child')
    } finally {
      try { process.kill(pid, 'SIGCONT') } catch {}
      await quick.close()
    }
  })
})
