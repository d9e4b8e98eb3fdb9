import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  AdamW, BatchSampler, GradientPool, countParams, demoCorpusShards, exportHuggingFace, initParams, presetConfig,
  runLocalTraining, unigramEntropy, validationLoss
} from '@barnraise/trainer'
import type { LlamaConfig } from '@barnraise/protocol'
import { ProgressBar } from '../progress-bar.ts'

const USAGE = `usage: barnraise-agent train [options]

Trains a model on the demo corpus (King James Bible, bytes) on this machine alone, and saves
it as a Hugging Face folder.

  --steps N          optimizer steps (default 300)
  --out DIR          checkpoint folder (default .data/train/<preset>)
  --preset NAME      model preset: tiny, small, medium, large (default small)
  --batch N          sequences per step (default 8)
  --seq N            tokens per sequence (default 128)
  --lr X             peak learning rate (default 3e-3)
  --warmup N         warmup steps (default 10% of steps)
  --seed N           initialisation and sampling seed (default 1)
  --threads N        CPU threads sharing each step (default: all cores)
  --eval-batches N   validation batches before and after (default 8)
`

/** Where the command writes; tests pass their own. */
export interface TrainIo { stdout: { write: (s: string) => unknown }, stderr: NodeJS.WriteStream }

interface TrainArgs {
  steps: number
  out: string
  preset: string
  batch: number
  seq: number
  lr: number
  warmup: number
  seed: number
  evalBatches: number
  threads: number
}

class UsageError extends Error {}

function integer (name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got "${raw}"`)
  return n
}

function parse (argv: string[]): TrainArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      steps: { type: 'string' },
      out: { type: 'string' },
      preset: { type: 'string', default: 'small' },
      batch: { type: 'string' },
      seq: { type: 'string' },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      seed: { type: 'string' },
      'eval-batches': { type: 'string' },
      threads: { type: 'string' }
    }
  })
  const steps = integer('steps', values.steps, 300, 1)
  const lr = values.lr === undefined ? 3e-3 : Number(values.lr)
  if (!(lr > 0 && lr < 1)) throw new UsageError(`--lr must be a number in (0, 1), got "${values.lr}"`)
  return {
    steps,
    out: values.out ?? join('.data', 'train', values.preset),
    preset: values.preset,
    batch: integer('batch', values.batch, 8, 1),
    seq: integer('seq', values.seq, 128, 1),
    lr,
    warmup: integer('warmup', values.warmup, Math.ceil(steps / 10), 0),
    seed: integer('seed', values.seed, 1, 0),
    evalBatches: integer('eval-batches', values['eval-batches'], 8, 1),
    threads: integer('threads', values.threads, availableParallelism(), 1)
  }
}

/**
 * `barnraise-agent train`: trains the default small model on the demo corpus with a progress
 * line on stderr, prints the unigram-entropy baseline and validation loss before and after,
 * and saves a Hugging Face checkpoint folder. Exit 0 on success, 2 on bad usage, 1 otherwise.
 */
export async function runTrainCommand (argv: string[], io: TrainIo = process): Promise<number> {
  let args: TrainArgs
  let config: LlamaConfig
  try {
    args = parse(argv)
    config = presetConfig(args.preset)
    if (args.seq > config.max_position_embeddings) throw new UsageError(`--seq ${args.seq} exceeds the ${args.preset} model's ${config.max_position_embeddings} positions`)
  } catch (err) {
    io.stderr.write(`train: ${(err as Error).message}\n${USAGE}`)
    return 2
  }
  try {
    return await trainAndSave(args, config, io)
  } catch (err) {
    io.stderr.write(`train: ${(err as Error).message}\n`)
    return 1
  }
}

async function trainAndSave (args: TrainArgs, config: LlamaConfig, io: TrainIo): Promise<number> {
  const { steps, batch, seq } = args
  const params = initParams(config, args.seed)
  // More threads than rows would sit idle.
  const threads = Math.min(args.threads, batch)
  io.stdout.write(`model ${args.preset}: ${(countParams(config) / 1e6).toFixed(2)}M parameters (hidden ${config.hidden_size}, ${config.num_hidden_layers} layers, ${config.num_attention_heads} heads / ${config.num_key_value_heads} kv heads), batch ${batch} x seq ${seq}, ${steps} steps, ${threads} thread${threads === 1 ? '' : 's'}\n`)

  const { train: trainShards, validation } = await demoCorpusShards()
  const evalOpts = { batches: args.evalBatches, batchSize: batch, seqLen: seq }
  io.stdout.write(`unigram-entropy baseline: ${unigramEntropy(validation.tokens).toFixed(4)} nats/token (the loss of a model that ignores context)\n`)
  io.stdout.write(`validation loss before: ${validationLoss(params, validation.tokens, evalOpts).toFixed(4)}\n`)

  const sampler = new BatchSampler(trainShards.map((s) => ({ tokens: s.tokens })), { batchSize: batch, seqLen: seq, seed: args.seed })
  const optimizer = new AdamW(params.flat.length, { lr: args.lr, beta1: 0.9, beta2: 0.95, weightDecay: 0.01 })
  const bar = new ProgressBar(io.stderr, 'train', { every: Math.max(1, Math.round(steps / 20)), verbose: true })
  const pool = await GradientPool.start(config, threads)
  const result = await runLocalTraining({
    pool,
    params,
    optimizer,
    steps,
    batchSize: batch,
    seqLen: seq,
    batches: (step) => sampler.batchAt(step),
    schedule: { peakLr: args.lr, warmupSteps: args.warmup, totalSteps: steps, minLr: args.lr / 10 },
    gradClip: 1,
    onProgress: (p) => bar.update(p.step, p.steps, p.loss, p.tokensPerSecond)
  }).finally(async () => { await pool.close() })
  const after = validationLoss(params, validation.tokens, evalOpts)
  io.stdout.write(`validation loss after: ${after.toFixed(4)}\n`)
  io.stdout.write(`trained ${result.tokens.toLocaleString('en-US')} tokens in ${result.seconds.toFixed(1)} s (${Math.round(result.tokens / result.seconds).toLocaleString('en-US')} tokens/s)${result.skippedSteps > 0 ? `, ${result.skippedSteps} steps skipped for non-finite gradients` : ''}\n`)
  await exportHuggingFace(args.out, params, { dtype: 'F32' })
  io.stdout.write(`checkpoint: ${args.out}\n`)
  return result.skippedSteps === steps ? 1 : 0
}
