import type { ExecutorKind, WorkUnit } from '@barnraise/protocol'
import type { ExecutorError } from './executor-error.ts'

export type { ExecutorKind }

/** One training window source: batch × (seqLen + 1) token ids for inner step `step`. */
export type BatchSource = (step: number) => Int32Array

export interface InnerProgress {
  step: number
  steps: number
  loss: number
  tokensPerSecond: number
}

export interface TrainRequest {
  unit: WorkUnit
  /** θ_t, the round's base weights, flat in the checkpoint's tensor order */
  base: Float32Array
  batches: BatchSource
  /** where the executor keeps state that must survive rounds and restarts (inner optimizer) */
  stateDir: string
  onProgress: (p: InnerProgress) => void
  signal: AbortSignal
}

export interface TrainResult {
  /** θ_local after H inner steps */
  params: Float32Array
  lossCurve: number[]
  tokens: number
  computeSeconds: number
  /** what trained it, for the signed report (torch-cuda, torch-cpu, typescript) */
  executor: ExecutorKind
  /** how many devices trained it together, where more than one (a torch child on several GPUs) */
  devices?: number
}

/**
 * Whatever computes the inner loop: the built-in TypeScript trainer, or a PyTorch child process
 * on CPU or GPU (torch-executor.ts). The work loop does not care which.
 */
export interface Executor {
  readonly name: string
  readonly kind: ExecutorKind
  /** A reason this executor cannot train the unit (too large, too slow), checked before any download; undefined when it can. */
  check?: (unit: WorkUnit, signal?: AbortSignal) => Promise<ExecutorError | undefined>
  /**
   * The part of `check` that needs nothing but the unit (no child process, no device), so it may
   * run while this executor trains: the look-ahead asks it of the next unit. A torch child
   * answers one request at a time, so its `check` would wait behind the unit training.
   */
  precheck?: (unit: WorkUnit) => ExecutorError | undefined
  train: (request: TrainRequest) => Promise<TrainResult>
  /** Releases threads or processes the executor holds. */
  close?: () => Promise<void>
  /** Waits for what a round left writing in the background (torch's optimizer state); call before removing its state directory. */
  flush?: (signal?: AbortSignal) => Promise<void>
}
