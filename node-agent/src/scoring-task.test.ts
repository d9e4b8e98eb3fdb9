import { test } from 'vitest'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { ScoringTask } from '@barnraise/protocol'
import { TORCH_MAX_PARAMS, countParams, presetConfig, scoringTaskFlops, sha256Hex, torchScoringTaskBytes } from '@barnraise/trainer'
import { BlobCache } from './blob-cache.ts'
import { createAgentHost } from './host.ts'
import { scoreReport, scoringRefusal, torchScoringHostBytes, torchScoringRefusal } from './scoring-task.ts'

test('a scoring task this machine cannot carry is refused before anything is fetched: model size, work, memory', () => {
  const tiny = presetConfig('tiny')
  const gib = 2 ** 30
  assert.equal(scoringRefusal({ modelConfig: tiny, batchSize: 8, seqLen: 64 }, 16 * gib), undefined)
  // The schema allows seqLen 65,536: T² attention a layer.
  assert.match(scoringRefusal({ modelConfig: { ...tiny, max_position_embeddings: 65_536 }, batchSize: 64, seqLen: 65_536 }, 16 * gib) ?? '', /TFLOP|GiB/)
  assert.match(scoringRefusal({ modelConfig: tiny, batchSize: 8, seqLen: 1024 }, gib / 8) ?? '', /GiB of memory; this machine has 0\.1 GiB/)
  assert.match(scoringRefusal({ modelConfig: presetConfig('125m'), batchSize: 1, seqLen: 16 }, 64 * gib) ?? '', /past what this agent scores/)
})

test('--max-memory caps what scoring may use below half the machine, and a task over it is refused naming the flag', () => {
  const tiny = presetConfig('tiny')
  const gib = 2 ** 30
  const task = { modelConfig: tiny, batchSize: 8, seqLen: 1024 }
  assert.equal(scoringRefusal(task, 64 * gib), undefined)
  assert.match(scoringRefusal(task, 64 * gib, gib / 8) ?? '', /GiB of memory; --max-memory allows 0\.1 GiB/)
  // A cap above half the machine leaves the half in charge.
  assert.match(scoringRefusal(task, gib / 8, 64 * gib) ?? '', /this machine has 0\.1 GiB/)
  assert.equal(scoringRefusal({ ...task, seqLen: 64 }, 64 * gib, gib / 8), undefined, 'a task under the cap is scored')
})

test('the torch path refuses by its own limits: the agent\'s parameters, the work bound, its device\'s share, free memory and --max-memory, and a task its measured speed cannot finish in half the round', () => {
  const gib = 2 ** 30
  const now = Date.parse('2030-01-01T00:00:00Z')
  const inAnHour = new Date(now + 3_600_000).toISOString()
  const m125 = presetConfig('125m')
  const task = { modelConfig: m125, batchSize: 8, seqLen: 2048, deadline: inAnHour }
  const h100 = { executor: 'torch-cuda' as const, totalBytes: 80 * gib, freeBytes: 79 * gib, flopsPerSecond: 30e12 }
  assert.equal(torchScoringRefusal(task, h100, now), undefined, 'past the TypeScript limits, seconds on a GPU')
  assert.ok(scoringRefusal(task, 64 * gib) !== undefined)
  const need = torchScoringTaskBytes(m125, 8, 2048, 'torch-cuda')
  assert.match(torchScoringRefusal(task, { ...h100, totalBytes: need * 1.9, freeBytes: need * 1.9 }, now) ?? '', /GiB of memory; this GPU has \d+\.\d GiB$/, 'half the device at most')
  assert.match(torchScoringRefusal(task, { ...h100, freeBytes: need / 2 }, now) ?? '', /this GPU had \d+\.\d GiB free$/)
  assert.match(torchScoringRefusal(task, { ...h100, deviceLimit: { bytes: need / 2, flag: '--max-gpu-memory' } }, now) ?? '', /--max-gpu-memory allows/)
  // On the CPU the agent's copies of the weights and Δ share the host: 8 bytes a parameter more.
  const cpu = { executor: 'torch-cpu' as const, totalBytes: 64 * gib, freeBytes: 60 * gib, flopsPerSecond: 200e9 }
  assert.equal(torchScoringTaskBytes(m125, 8, 2048, 'torch-cpu') - need, 8 * countParams(m125))
  // 16.6 TFLOP (T² attention counted) at 200 GFLOP/s: 83 s of an hour.
  assert.equal(Math.ceil(scoringTaskFlops(m125, 8, 2048) / 200e9), 83)
  assert.equal(torchScoringRefusal(task, cpu, now), undefined)
  // Time: more than half of what is left of the round at the measured speed, or at 1 GFLOP/s when nothing was measured.
  assert.equal(torchScoringRefusal({ ...task, deadline: new Date(now + 170_000).toISOString() }, cpu, now), undefined)
  assert.match(torchScoringRefusal({ ...task, deadline: new Date(now + 160_000).toISOString() }, cpu, now) ?? '', /about 83 s at 200\.0 GFLOP\/s, more than half of the 160 s left in the round$/)
  const unmeasured = { executor: 'torch-cpu' as const, totalBytes: 64 * gib, freeBytes: 60 * gib }
  assert.match(torchScoringRefusal(task, unmeasured, now) ?? '', /at 1\.0 GFLOP\/s \(nothing measured yet\)/)
  assert.equal(torchScoringRefusal({ ...task, deadline: new Date(now - 1000).toISOString() }, unmeasured, now), undefined, 'a deadline already past is the coordinator\'s call')
  // The work bound, and the agent's own parameter limit (it holds the weights in Float32Arrays).
  const long = { ...m125, max_position_embeddings: 65_536 }
  assert.match(torchScoringRefusal({ ...task, modelConfig: long, seqLen: 65_536, batchSize: 64 }, h100, now) ?? '', /TFLOP; this agent scores at most 2000 TFLOP a task/)
  const giant = { ...m125, num_hidden_layers: 1024, hidden_size: 4096, intermediate_size: 16_384, head_dim: 128, num_attention_heads: 32, num_key_value_heads: 32 }
  assert.ok(countParams(giant) > TORCH_MAX_PARAMS)
  assert.match(torchScoringRefusal({ ...task, modelConfig: giant }, h100, now) ?? '', /past what this agent holds/)
})

test('on CUDA the GPU\'s cap and the host\'s are apart: --max-gpu-memory bounds the device, --max-memory the agent\'s copies of the checkpoint and Δ; on the CPU --max-memory bounds both', () => {
  const gib = 2 ** 30
  const now = Date.parse('2030-01-01T00:00:00Z')
  const m125 = presetConfig('125m')
  const task = { modelConfig: m125, batchSize: 8, seqLen: 2048, deadline: new Date(now + 3_600_000).toISOString() }
  const h100 = { executor: 'torch-cuda' as const, totalBytes: 80 * gib, freeBytes: 79 * gib, flopsPerSecond: 30e12 }
  const device = torchScoringTaskBytes(m125, 8, 2048, 'torch-cuda')
  const host = torchScoringHostBytes(m125)
  assert.equal(host, 8 * countParams(m125))
  // 16 GiB of host, 20 GiB of GPU: both hold a 125M task.
  assert.equal(torchScoringRefusal(task, { ...h100, deviceLimit: { bytes: 20 * gib, flag: '--max-gpu-memory' }, hostLimitBytes: 16 * gib }, now), undefined)
  assert.equal(torchScoringRefusal(task, { ...h100, deviceLimit: { bytes: device, flag: '--max-gpu-memory' }, hostLimitBytes: host }, now), undefined, 'exactly at both caps')
  assert.equal(torchScoringRefusal(task, { ...h100, deviceLimit: { bytes: device - 1, flag: '--max-gpu-memory' }, hostLimitBytes: 16 * gib }, now),
    `scoring would need ${(device / gib).toFixed(1)} GiB of memory; --max-gpu-memory allows ${((device - 1) / gib).toFixed(1)} GiB`)
  // A host cap below the agent's copies refuses however roomy the GPU: it names --max-memory, not the GPU's flag.
  assert.equal(torchScoringRefusal(task, { ...h100, deviceLimit: { bytes: 20 * gib, flag: '--max-gpu-memory' }, hostLimitBytes: host - 1 }, now),
    `scoring would need ${(host / gib).toFixed(1)} GiB of host memory for the checkpoint and Δ; --max-memory allows ${((host - 1) / gib).toFixed(1)} GiB`)
  // --max-memory alone on CUDA caps the GPU too, and the refusal says so.
  assert.match(torchScoringRefusal(task, { ...h100, deviceLimit: { bytes: device / 2, flag: '--max-memory' }, hostLimitBytes: device / 2 }, now) ?? '',
    /GiB of memory; --max-memory allows \d+\.\d GiB \(it caps the GPU too while --max-gpu-memory is not given\)$/)
  // On the CPU the device is the host: one cap, the agent's copies inside torchScoringTaskBytes.
  const cpu = { executor: 'torch-cpu' as const, totalBytes: 64 * gib, freeBytes: 60 * gib, flopsPerSecond: 200e9 }
  const onCpu = torchScoringTaskBytes(m125, 8, 2048, 'torch-cpu')
  assert.equal(torchScoringRefusal(task, { ...cpu, deviceLimit: { bytes: onCpu, flag: '--max-memory' } }, now), undefined)
  assert.match(torchScoringRefusal(task, { ...cpu, deviceLimit: { bytes: onCpu - 1, flag: '--max-memory' } }, now) ?? '', /GiB of memory; --max-memory allows \d+\.\d GiB$/)
})

test('scoring windows that hash right but are not a token shard answer the task as malformed (so its blobs are dropped), not as a failure the agent retries', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'barnraise-bad-windows-'))
  const libp2p = await createAgentHost(await generateKeyPair('Ed25519'))
  try {
    const windows = new TextEncoder().encode('not a token shard, though its sha256 is the one the task names')
    const sha = sha256Hex(windows)
    await mkdir(join(dataDir, 'blobs'), { recursive: true })
    await writeFile(join(dataDir, 'blobs', sha), windows)
    // Only the windows are read before they are found wanting: nothing is dialled.
    const cache = new BlobCache(dataDir, libp2p, multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${libp2p.peerId.toString()}`))
    const task: ScoringTask = {
      taskId: randomUUID(),
      runId: randomUUID(),
      runName: 'hostile',
      round: 1,
      baseCheckpoint: 'a'.repeat(64),
      modelConfig: presetConfig('tiny'),
      report: 'b'.repeat(64),
      codec: 'fp32',
      windows: sha,
      batchSize: 1,
      seqLen: 8,
      deadline: new Date(Date.now() + 3_600_000).toISOString()
    }
    const result = await scoreReport(cache, task, new AbortController().signal, { memoryBytes: 16 * 2 ** 30 })
    assert.ok('malformed' in result)
    assert.match(result.malformed, /ERR_TRUNCATED|ERR_BAD_MAGIC/)
  } finally {
    await libp2p.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
})
