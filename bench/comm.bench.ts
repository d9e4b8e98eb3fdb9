// Communication against quality, in one run: the same model, the same tokens, five ways.
//   bin/node bench/comm.bench.ts     (or: pnpm bench comm)
// 1. synchronous data parallel: every inner step all nodes' gradients are averaged (a ring
//    all-reduce of fp32, simulated in-process), one AdamW step on the shared weights;
// 2. DiLoCo with int8 pseudo-gradients, Nesterov outer step (Barnraise's default);
// 3. DiLoCo with topk pseudo-gradients plus error feedback (each node keeps what its codec
//    dropped and adds the run's share of it, recipe.errorFeedbackDecay, to its next report, with
//    node-agent/src/error-feedback.ts's own addResidual).
// 4. the same topk run with a sparse broadcast (run spec `broadcast: 'sparse'`): the round's mean
//    goes out as topk plus the coordinator's own error feedback (coordinator/src/rounds/
//    sparse-broadcast.ts, called here), so a node downloads 0.032 bytes a parameter a round
//    however many nodes there are, where the listed reports grow with the node count;
// 5. DiLoCo int8 with overlapped rounds (a one-step-delayed outer update, docs/overlap.md):
//    round r's units train from the checkpoint before round r − 1's, and their mean is applied
//    to round r − 1's, so a node never waits for a round to close; this row is what that costs.
// Bytes are sent plus received per node. A DiLoCo node that is there from the start makes the
// untrained model from the run's seed (node-agent/src/initial-base.ts) instead of downloading it;
// after that it rebuilds each round's base from whichever is fewest bytes
// (node-agent/src/base-rebuild.ts, coordinator/src/rounds/round-update.ts): the round's reports,
// or their mean as the coordinator encodes it (int8 for int8 and topk runs, and then applied as
// encoded, as here), or the model. A node that joins later downloads the model once (printed).
import { DEFAULT_ERROR_FEEDBACK_DECAY, decodePseudoGradient, encodePseudoGradient, encodedByteLength } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import { broadcastCodecOf, sendsAggregate } from '../coordinator/src/rounds/round-update.ts'
import { sparseBroadcast } from '../coordinator/src/rounds/sparse-broadcast.ts'
import { addResidual } from '../node-agent/src/error-feedback.ts'
import {
  AdamW, BatchSampler, NesterovSGD, clipGradNorm, countParams, createParamSet, demoCorpusShards, initParams,
  learningRateAt, lossAndGrad, presetConfig, validationLoss
} from '@barnraise/trainer'

const PRESET = 'small'
const NODES = Number(process.env.BENCH_NODES ?? 4)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8)
const INNER_STEPS = Number(process.env.BENCH_INNER_STEPS ?? 20)
// BENCH_BATCH: sequences per node per inner step (data parallel's batch is that × the nodes).
const BATCH = Number(process.env.BENCH_BATCH ?? 4)
const SEQ = 64
const PEAK_LR = 3e-3
// BENCH_EF_DECAY sets another decay for the topk rows (1: carry all of each residual).
const FEEDBACK_DECAY = Number(process.env.BENCH_EF_DECAY ?? DEFAULT_ERROR_FEEDBACK_DECAY)
if (!(FEEDBACK_DECAY >= 0 && FEEDBACK_DECAY <= 1)) throw new Error(`BENCH_EF_DECAY must be between 0 and 1, not ${process.env.BENCH_EF_DECAY}`)

const config = presetConfig(PRESET)
const n = countParams(config)
const shards = await demoCorpusShards()
const evalOpts = { batches: 8, batchSize: 8, seqLen: SEQ }
const schedule = { peakLr: PEAK_LR, warmupSteps: 10, totalSteps: ROUNDS * INNER_STEPS, minLr: PEAK_LR / 10 }
const tokens = ROUNDS * INNER_STEPS * NODES * BATCH * SEQ

/** bytes: over the whole run, per node; perRound: a round once joined. */
interface Outcome { loss: number, bytes: number, perRound: number, seconds: number }

function samplers (): BatchSampler[] {
  return Array.from({ length: NODES }, (_, w) => new BatchSampler(shards.train.map((s) => ({ tokens: s.tokens })), { batchSize: BATCH, seqLen: SEQ, seed: 100 + w }))
}

function adam (): AdamW {
  return new AdamW(n, { lr: PEAK_LR, beta1: 0.9, beta2: 0.95, weightDecay: 0.01 })
}

/** One AdamW step per inner step on the mean gradient of all nodes' batches. */
function dataParallel (): Outcome {
  const started = performance.now()
  const theta = initParams(config, 7)
  const opt = adam()
  const data = samplers()
  const grads = createParamSet(config)
  const mean = new Float32Array(n)
  for (let step = 0; step < ROUNDS * INNER_STEPS; step++) {
    mean.fill(0)
    for (const sampler of data) {
      const { loss } = lossAndGrad(theta, sampler.batchAt(step), BATCH, SEQ, grads)
      if (!Number.isFinite(loss)) throw new Error('data parallel diverged')
      for (let i = 0; i < n; i++) mean[i]! += grads.flat[i]! / NODES
    }
    clipGradNorm(mean, 1)
    opt.step(theta.flat, mean, learningRateAt(step, schedule))
  }
  const perStep = allReduceBytes(NODES)
  const bytes = perStep * ROUNDS * INNER_STEPS
  return { loss: validationLoss(theta, shards.validation.tokens, evalOpts), bytes, perRound: perStep * INNER_STEPS, seconds: (performance.now() - started) / 1000 }
}

/**
 * How rounds follow each other: one at a time; overlapped with a one-step-delayed outer update
 * (each round trains from the base one outer step old); or the eager variant of Kale et al.
 * (docs/overlap.md), simulated only here: each node's base is that older base minus its own
 * last report's share of the outer step, so its own work counts at once.
 */
type Rounds = 'blocking' | 'delayed' | 'eager'

/** A ring all-reduce sends and receives 2(N−1)/N of the fp32 gradient each, every step. */
function allReduceBytes (nodes: number): number {
  return 2 * 2 * (nodes - 1) / nodes * 4 * n
}

/** How the round's mean reaches the nodes (run spec `broadcast`). */
type Broadcast = 'dense' | 'sparse'

/**
 * A DiLoCo node's bytes a round: its report up; down, the round's `nodes` reports or their mean
 * (as the coordinator decides, round-update.ts), or the model where that is less.
 */
function roundBytes (nodes: number, codec: CodecName, broadcast: Broadcast): number {
  const up = encodedByteLength(codec, n)
  const mean = broadcastCodecOf({ codec, broadcast })
  return up + Math.min(sendsAggregate(nodes, nodes * up, mean, n) ? encodedByteLength(mean, n) : nodes * up, 4 * n)
}

/** DiLoCo rounds: H AdamW steps per node from the shared base, codec'd deltas averaged, Nesterov outer step. */
function diloco (codec: CodecName, errorFeedback: number | null, outer: { lr: number, momentum: number }, rounds: Rounds = 'blocking', broadcast: Broadcast = 'dense'): Outcome {
  const delayed = rounds !== 'blocking'
  const started = performance.now()
  const theta = initParams(config, 7)
  // Overlapped: the checkpoint before theta, which round r + 1's units start from.
  const older = new Float32Array(theta.flat)
  const outerOpt = new NesterovSGD(n, outer)
  const data = samplers()
  const nodes = data.map((sampler) => ({ sampler, params: createParamSet(config), grads: createParamSet(config), opt: adam(), residual: new Float32Array(n), last: new Float32Array(n), base: new Float32Array(n) }))
  const payloadBytes = encodedByteLength(codec, n)
  const meanCodec = broadcastCodecOf({ codec, broadcast })
  const aggregate = sendsAggregate(NODES, NODES * payloadBytes, meanCodec, n)
  // The coordinator's residual (sparse broadcast): what its broadcasts have left out so far.
  let carried: Float32Array | null = null
  for (let round = 0; round < ROUNDS; round++) {
    const sum = new Float32Array(n)
    const base = delayed ? new Float32Array(older) : theta.flat
    if (delayed) older.set(theta.flat)
    for (const node of nodes) {
      node.base.set(base)
      if (rounds === 'eager') for (let i = 0; i < n; i++) node.base[i] = base[i]! - outer.lr * node.last[i]! / NODES
      node.params.flat.set(node.base)
      for (let s = 0; s < INNER_STEPS; s++) {
        const step = round * INNER_STEPS + s
        const { loss } = lossAndGrad(node.params, node.sampler.batchAt(step), BATCH, SEQ, node.grads)
        if (!Number.isFinite(loss)) throw new Error(`${codec} diverged`)
        clipGradNorm(node.grads.flat, 1)
        node.opt.step(node.params.flat, node.grads.flat, learningRateAt(step, schedule))
      }
      const delta = new Float32Array(n)
      for (let i = 0; i < n; i++) delta[i] = node.base[i]! - node.params.flat[i]!
      if (errorFeedback !== null) addResidual(delta, node.residual, errorFeedback)
      const payload = encodePseudoGradient(codec, delta)
      const received = decodePseudoGradient(codec, payload, n)
      if (errorFeedback !== null) for (let i = 0; i < n; i++) node.residual[i] = delta[i]! - received[i]!
      node.last.set(received)
      for (let i = 0; i < n; i++) sum[i]! += received[i]! / NODES
    }
    let applied: Float32Array = sum
    if (aggregate && meanCodec === 'topk') {
      const sparse = sparseBroadcast(sum, carried)
      applied = sparse.applied
      carried = sparse.residual
    } else if (aggregate) {
      applied = decodePseudoGradient(meanCodec, encodePseudoGradient(meanCodec, sum), n)
    }
    outerOpt.step(theta.flat, applied)
  }
  const perRound = roundBytes(NODES, codec, broadcast)
  const bytes = ROUNDS * perRound
  return { loss: validationLoss(theta, shards.validation.tokens, evalOpts), bytes, perRound, seconds: (performance.now() - started) / 1000 }
}

process.stdout.write(`model ${PRESET} (${n.toLocaleString('en-US')} parameters), ${NODES} nodes, ${ROUNDS} rounds × ${INNER_STEPS} inner steps × batch ${BATCH} × seq ${SEQ}: ${tokens.toLocaleString('en-US')} tokens each way\n`)
const initial = validationLoss(initParams(config, 7), shards.validation.tokens, evalOpts)
process.stdout.write(`initial validation loss ${initial.toFixed(4)}\n\n`)
const results: Array<[string, Outcome]> = []
const report = (name: string, o: Outcome): void => {
  results.push([name, o])
  process.stdout.write(`  ${name.padEnd(30)} loss ${o.loss.toFixed(4)}   ${(o.bytes / 2 ** 20).toFixed(2).padStart(8)} MiB/node   (${o.seconds.toFixed(0)} s)\n`)
}
report('data parallel (fp32)', dataParallel())
// Each codec with the outer step that suited it best over these 8 rounds (a sweep of lr and
// momentum in this bench, README.md): plain averaging for int8 (lr 1, no momentum: 2.23, where
// DiLoCo's usual 0.7 / 0.9 ends at 2.91 and 1 / 0.5 at 2.68); topk wants its sparse mean
// amplified (lr 3, no momentum: 2.50; 2 / 0: 2.54; 4 / 0: 2.76; 1 / 0: 2.82; 1 / 0.5: 2.58),
// since its error feedback holds back most of what each round trained. A delayed outer step
// wants a smaller lr: int8 overlapped ends at 2.48 with lr 0.5 and 2.59 with lr 1 (topk
// overlapped: 3.42 at 1 / 0, 5.26 at 2 / 0, 6.36 at 3 / 0). A sparse broadcast's topk mean
// holds back more again: 2 / 0 ends at 2.69, 3 / 0 at 2.70, 4 / 0 at 3.04, 1 / 0 at 3.19.
// Those topk figures carry all of each residual (decay 1); at decay 0.7 a sparse broadcast ends
// at 2.54 with lr 3 and 2.79 with lr 2. Letting unsent values fade helps:
// at lr 3, decay 0.9 ends at 2.43, 0.7 at 2.37, 0.5 at 2.40 (0.7 at lr 2: 2.57, at lr 4: 2.45);
// 0.7 is the run spec's default (README.md).
const INT8_OUTER = { lr: 1, momentum: 0 }
const TOPK_OUTER = { lr: 3, momentum: 0 }
const SPARSE_OUTER = { lr: 3, momentum: 0 }
const OVERLAPPED_OUTER = { lr: 0.5, momentum: 0 }
report('DiLoCo int8', diloco('int8', null, INT8_OUTER))
report('DiLoCo topk + err. fb.', diloco('topk', FEEDBACK_DECAY, TOPK_OUTER))
report('DiLoCo topk, sparse broadcast', diloco('topk', FEEDBACK_DECAY, SPARSE_OUTER, 'blocking', 'sparse'))
report('DiLoCo int8, overlapped', diloco('int8', null, OVERLAPPED_OUTER, 'delayed'))

// BENCH_COMM_SWEEP=1: the blocking / overlapped / eager table of docs/overlap.md, row by row.
if (process.env.BENCH_COMM_SWEEP === '1') {
  process.stdout.write('\nsweep (validation loss at the end; outer lr / momentum):\n')
  const cells: Array<[CodecName, { lr: number, momentum: number }, Rounds]> = [
    ['int8', { lr: 1, momentum: 0 }, 'delayed'], ['int8', { lr: 1, momentum: 0 }, 'eager'],
    ['topk', { lr: 1, momentum: 0 }, 'blocking'], ['topk', { lr: 1, momentum: 0 }, 'delayed'], ['topk', { lr: 1, momentum: 0 }, 'eager'],
    ['topk', TOPK_OUTER, 'delayed']
  ]
  for (const [codec, outer, rounds] of cells) {
    let loss: string
    try {
      // docs/overlap.md's table was measured carrying all of each residual.
      loss = diloco(codec, codec === 'topk' ? 1 : null, outer, rounds).loss.toFixed(4)
    } catch (err) {
      loss = (err as Error).message
    }
    process.stdout.write(`  ${codec.padEnd(5)} ${`${outer.lr} / ${outer.momentum}`.padEnd(8)} ${rounds.padEnd(9)} ${loss}\n`)
  }
}

const dp = results[0]![1]
const int8 = results[1]![1]
const sparse = results[2]![1]
const sparseBroadcastRun = results[3]![1]
const overlapped = results[4]![1]
const sign = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}%`
process.stdout.write('\nmethod                          loss vs DP   bytes/node, whole run   × fewer   a round   × fewer\n')
for (const [name, o] of results) {
  process.stdout.write(`  ${name.padEnd(30)} ${sign(100 * (o.loss - dp.loss) / dp.loss)}`.padEnd(45) +
    `${(o.bytes / 2 ** 20).toFixed(2).padStart(9)} MiB   ${(dp.bytes / o.bytes).toFixed(0).padStart(9)}×   ${(o.perRound / 2 ** 10).toFixed(1).padStart(8)} KiB   ${(dp.perRound / o.perRound).toFixed(0).padStart(5)}×\n`)
}
process.stdout.write(`a node joining after round 1 downloads the model once: +${(4 * n / 2 ** 20).toFixed(2)} MiB\n`)
// What a round costs a topk node as the run grows: the listed reports grow with the node count
// until their int8 mean is smaller; a sparse broadcast stays one topk payload each way.
process.stdout.write('\na topk round per node, × fewer bytes than data parallel, as the run grows:\n  nodes          ' + [4, 16, 64, 1024].map((k) => String(k).padStart(8)).join('') + '\n')
for (const broadcast of ['dense', 'sparse'] as const) {
  process.stdout.write(`  ${`${broadcast} broadcast`.padEnd(15)}` + [4, 16, 64, 1024].map((k) => `${(allReduceBytes(k) * INNER_STEPS / roundBytes(k, 'topk', broadcast)).toFixed(0)}×`.padStart(8)).join('') + '\n')
}
const penalty = 100 * (sparse.loss - dp.loss) / dp.loss
process.stdout.write(`comm: ${(dp.bytes / sparse.bytes).toFixed(0)}× fewer bytes than data parallel, loss ${sign(penalty)} (${sign(100 * (sparse.loss - int8.loss) / int8.loss)} against DiLoCo int8; sparse broadcast ${(dp.bytes / sparseBroadcastRun.bytes).toFixed(0)}×, ${sign(100 * (sparseBroadcastRun.loss - dp.loss) / dp.loss)}; int8 overlapped ${sign(100 * (overlapped.loss - dp.loss) / dp.loss)})\n`)

