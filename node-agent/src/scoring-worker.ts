// Worker thread body for scoring-task.ts: the three held-out losses of a scoring task, off the
// agent's event loop (heartbeats and its own uploads go on meanwhile).
import { parentPort, workerData } from 'node:worker_threads'
import { decodePseudoGradient } from '@barnraise/protocol'
import type { CodecName, LlamaConfig } from '@barnraise/protocol'
import { createParamSet, evaluateLoss, paramSetFromSafetensors } from '@barnraise/trainer'

export interface ScoringJob { config: LlamaConfig, checkpoint: Uint8Array, report: Uint8Array, codec: CodecName, ids: Int32Array, batchSize: number, seqLen: number }
export interface ScoringReply { base: number | null, after: number | null, reversed: number | null }

const job = workerData as ScoringJob
const base = paramSetFromSafetensors(job.config, job.checkpoint)
const delta = decodePseudoGradient(job.codec, job.report, base.flat.length)
const loss = (flat: Float32Array): number | null => {
  const value = evaluateLoss(createParamSet(job.config, flat), job.ids, job.batchSize, job.seqLen)
  return Number.isFinite(value) ? value : null
}
parentPort!.postMessage({
  base: loss(base.flat),
  after: loss(base.flat.map((x, i) => x - delta[i]!)),
  reversed: loss(base.flat.map((x, i) => x + delta[i]!))
} satisfies ScoringReply)
