// Byzantine nodes against the defences, in one process, with the coordinator's own screening
// and aggregation code (trainer/src/aggregate):
//   pnpm bench byzantine        (BENCH_ROUNDS=n for more rounds)
// One federated DiLoCo training of the `small` preset with 20 nodes, 4 of them adversarial,
// once per attack, with the defences (screening each report in arrival order, then a trimmed
// mean of what passed, clipped to 2× the median norm) and without (the plain token-weighted
// mean of everything), side by side with an all-honest run of the same seed.
import {
  AdamW, BatchSampler, NesterovSGD, ReportScreen, aggregate, clipGradNorm, countParams, createParamSet, demoCorpusShards,
  deltaNorm, initParams, learningRateAt, lossAndGrad, presetConfig, sketchDelta, validationGradient, validationLoss
} from '@barnraise/trainer'
import type { Contribution, ParamSet } from '@barnraise/trainer'

const PRESET = 'small'
const NODES = 20
const ADVERSARIES = 4
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const INNER_STEPS = 3
const BATCH = 4
const SEQ = 32
const TOKENS = INNER_STEPS * BATCH * SEQ
const DEFENDED_RULE = { rule: 'trimmed-mean', trim: 0.2 } as const
const CLIP = { clipToMedianNorm: 2 }

type Attack = 'none' | 'sign flip' | 'scaled ×100' | 'noise' | 'all-zero' | 'replay' | 'copy' | 'slow poison'
const ATTACKS: Attack[] = ['sign flip', 'scaled ×100', 'noise', 'all-zero', 'replay', 'copy', 'slow poison']
const CRUDE = new Set<Attack>(['sign flip', 'scaled ×100', 'noise', 'all-zero', 'replay', 'copy'])

const config = presetConfig(PRESET)
const n = countParams(config)
const shards = await demoCorpusShards()
const scoring = { batches: 1, batchSize: 8, seqLen: SEQ }
const finalEval = { batches: 6, batchSize: 8, seqLen: SEQ }

/** A deterministic normal generator (Box–Muller over an LCG). */
function normals (seed: number): () => number {
  let s = seed >>> 0
  const uniform = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 0.5) / 2 ** 32 }
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform())
}

/** One node's inner loop from θ: H AdamW steps on its own batches; returns Δ = θ − θ_local. */
function train (theta: Float32Array, node: number, round: number, work: { params: ParamSet, grads: ParamSet }): Float32Array {
  work.params.flat.set(theta)
  const adam = new AdamW(n, { lr: 3e-3, beta1: 0.9, beta2: 0.95, weightDecay: 0.01 })
  const sampler = new BatchSampler(shards.train.map((s) => ({ tokens: s.tokens })), { batchSize: BATCH, seqLen: SEQ, seed: 1000 + node })
  for (let s = 0; s < INNER_STEPS; s++) {
    lossAndGrad(work.params, sampler.batchAt(round * INNER_STEPS + s), BATCH, SEQ, work.grads)
    clipGradNorm(work.grads.flat, 1)
    adam.step(work.params.flat, work.grads.flat, learningRateAt(round * INNER_STEPS + s, { peakLr: 3e-3, warmupSteps: 2, totalSteps: ROUNDS * INNER_STEPS, minLr: 3e-4 }))
  }
  const delta = new Float32Array(n)
  for (let i = 0; i < n; i++) delta[i] = theta[i]! - work.params.flat[i]!
  return delta
}

interface Outcome { loss: number, adversarialSent: number, adversarialCaught: number, honestSent: number, honestExcluded: number, seconds: number, maxHonestCosine: number }

function simulate (attack: Attack, defended: boolean): Outcome {
  const started = performance.now()
  const theta = initParams(config, 7)
  const outer = new NesterovSGD(n, { lr: 0.7, momentum: 0.9 })
  const work = { params: createParamSet(config), grads: createParamSet(config) }
  const probe = createParamSet(config)
  const lossOf = (flat: Float32Array): number => { probe.flat.set(flat); return validationLoss(probe, shards.validation.tokens, scoring) }
  const screen = new ReportScreen()
  const adversarial = (k: number): boolean => attack !== 'none' && k >= NODES - ADVERSARIES
  const firstDelta = new Map<number, Float32Array>()
  const poison = new Float32Array(n)
  const gauss = normals(99)
  for (let i = 0; i < n; i++) poison[i] = gauss()
  const poisonNorm = deltaNorm(poison)
  const out: Outcome = { loss: 0, adversarialSent: 0, adversarialCaught: 0, honestSent: 0, honestExcluded: 0, seconds: 0, maxHonestCosine: 0 }
  for (let round = 0; round < ROUNDS; round++) {
    screen.openRound(round + 1)
    // As the coordinator does: before any round has shown the direction, the held-out gradient gives it.
    if (defended && round === 0) screen.orient(sketchDelta(validationGradient(theta, shards.validation.tokens, scoring)))
    const honest = new Map<number, Float32Array>()
    for (let k = 0; k < NODES; k++) if (!adversarial(k)) honest.set(k, train(theta.flat, k, round, work))
    const honestNorms = [...honest.values()].map(deltaNorm).sort((a, b) => a - b)
    const medianNorm = honestNorms[honestNorms.length >> 1]!
    const reports: Array<{ node: number, delta: Float32Array }> = []
    for (let k = 0; k < NODES; k++) {
      if (!adversarial(k)) { reports.push({ node: k, delta: honest.get(k)! }); continue }
      let delta: Float32Array
      switch (attack) {
        case 'sign flip': delta = train(theta.flat, k, round, work).map((x) => -x); break
        case 'scaled ×100': delta = train(theta.flat, k, round, work).map((x) => 100 * x); break
        case 'noise': { const g = normals(round * 100 + k); const raw = new Float32Array(n).map(() => g()); const s = medianNorm / deltaNorm(raw); delta = raw.map((x) => x * s); break }
        case 'all-zero': delta = new Float32Array(n); break
        case 'replay': {
          if (round === 0) { delta = train(theta.flat, k, round, work); firstDelta.set(k, delta) } else delta = firstDelta.get(k)!
          break
        }
        case 'copy': delta = new Float32Array(honest.get(k - ADVERSARIES)!); break
        case 'slow poison': { const d = train(theta.flat, k, round, work); const s = 0.3 * deltaNorm(d) / poisonNorm; delta = d.map((x, i) => x + s * poison[i]!); break }
        default: throw new Error(`attack ${attack}`)
      }
      reports.push({ node: k, delta })
    }
    // Arrival order: adversaries spread among honest nodes, different each round; a copier
    // sends after the report it copies (it must have it first).
    const slot = (node: number): number => (node * 7919 + round * 104729) % 997
    const arrival = (node: number): number => attack === 'copy' && adversarial(node) ? Math.max(slot(node), slot(node - ADVERSARIES) + 0.5) : slot(node)
    reports.sort((a, b) => arrival(a.node) - arrival(b.node))
    const kept: Contribution[] = []
    if (!defended) {
      for (const r of reports) kept.push({ delta: r.delta, tokens: TOKENS })
    } else {
      const base = lossOf(theta.flat)
      const moved = new Float32Array(n)
      for (const r of reports) {
        const adv = adversarial(r.node)
        // The coordinator refuses an all-zero delta before screening (ERR_EMPTY_DELTA).
        let excluded = deltaNorm(r.delta) === 0
        if (!excluded) {
          for (let i = 0; i < n; i++) moved[i] = theta.flat[i]! - r.delta[i]!
          const after = lossOf(moved)
          for (let i = 0; i < n; i++) moved[i] = theta.flat[i]! + r.delta[i]!
          const reversed = lossOf(moved)
          const verdict = screen.check({ id: String(r.node), delta: r.delta, tokens: TOKENS }, { base, after, reversed })
          excluded = verdict.exclusion !== null
          if (!excluded) { screen.admit(verdict); kept.push({ delta: r.delta, tokens: TOKENS }) }
        }
        // A replayer's first round is honest work (it has nothing to replay yet).
        const lying = adv && !(attack === 'replay' && round === 0)
        if (lying) { out.adversarialSent++; if (excluded) out.adversarialCaught++ } else if (!adv) { out.honestSent++; if (excluded) out.honestExcluded++ }
      }
    }
    if (round === 0 && attack === 'none') {
      const list = [...honest.values()]
      for (let a = 0; a < list.length; a++) for (let b = 0; b < a; b++) out.maxHonestCosine = Math.max(out.maxHonestCosine, cosine(list[a]!, list[b]!))
    }
    const update = kept.length === 0 ? new Float32Array(n) : defended ? aggregate(kept, DEFENDED_RULE, CLIP).update : aggregate(kept, { rule: 'mean' }).update
    outer.step(theta.flat, update)
  }
  const loss = validationLoss(theta, shards.validation.tokens, finalEval)
  return { ...out, loss: Number.isFinite(loss) ? loss : Infinity, seconds: (performance.now() - started) / 1000 }
}

function cosine (a: Float32Array, b: Float32Array): number {
  let dot = 0; let na = 0; let nb = 0
  for (let i = 0; i < a.length; i++) { dot += a[i]! * b[i]!; na += a[i]! * a[i]!; nb += b[i]! * b[i]! }
  return dot / Math.sqrt(na * nb)
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`

process.stdout.write(`model ${PRESET}: ${n.toLocaleString('en-US')} parameters; ${NODES} nodes (${ADVERSARIES} adversarial) × ${INNER_STEPS} inner steps × batch ${BATCH} × seq ${SEQ}; ${ROUNDS} rounds\n`)
process.stdout.write(`defences: screening (${ReportScreen.name}) then ${DEFENDED_RULE.rule} ${DEFENDED_RULE.trim}, clipped to ${CLIP.clipToMedianNorm}× the median norm\n\n`)
const honestRun = simulate('none', false)
const honestDefended = simulate('none', true)
process.stdout.write(`all honest: validation loss ${honestRun.loss.toFixed(4)} (mean), ${honestDefended.loss.toFixed(4)} with the defences (${signed(honestDefended.loss / honestRun.loss - 1)}); honest excluded ${honestDefended.honestExcluded}/${honestDefended.honestSent}; max honest cosine ${honestRun.maxHonestCosine.toFixed(3)} (${honestRun.seconds.toFixed(0)} s a run)\n\n`)
process.stdout.write(`${'attack'.padEnd(13)} ${'defended'.padStart(9)} ${'vs honest'.padStart(10)} ${'undefended'.padStart(11)} ${'vs honest'.padStart(10)} ${'caught'.padStart(8)} ${'honest excluded'.padStart(16)}\n`)
let worst = -Infinity
let crudeSent = 0
let crudeCaught = 0
let honestSent = honestDefended.honestSent
let honestExcluded = honestDefended.honestExcluded
for (const attack of ATTACKS) {
  const d = simulate(attack, true)
  const u = simulate(attack, false)
  const rel = d.loss / honestRun.loss - 1
  worst = Math.max(worst, rel)
  if (CRUDE.has(attack)) { crudeSent += d.adversarialSent; crudeCaught += d.adversarialCaught }
  honestSent += d.honestSent
  honestExcluded += d.honestExcluded
  process.stdout.write(`${attack.padEnd(13)} ${d.loss.toFixed(4).padStart(9)} ${signed(rel).padStart(10)} ${u.loss.toFixed(4).padStart(11)} ${signed(u.loss / honestRun.loss - 1).padStart(10)} ${`${d.adversarialCaught}/${d.adversarialSent}`.padStart(8)} ${`${d.honestExcluded}/${d.honestSent}`.padStart(16)}\n`)
}
process.stdout.write(`\nbyzantine: worst loss ${signed(worst)} vs honest, recall ${pct(crudeCaught / crudeSent).replace('.0%', '%')}, honest excluded ${pct(honestExcluded / honestSent)}\n`)
