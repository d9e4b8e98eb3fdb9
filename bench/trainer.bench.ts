// Training throughput of the default model on this machine, and the matmul kernel against
// the textbook triple loop measured in the same run. Bounded to well under a minute.
//   bin/node bench/trainer.bench.ts
import os from 'node:os'
import {
  AdamW, GradientPool, clipGradNorm, countParams, createParamSet, initParams, lossAndGrad, matmulABt, matmulABtNaive, presetConfig
} from '@barnraise/trainer'

type Kernel = (a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number) => void

/** Runs `fn` repeatedly for about `budgetMs` (after one warm-up call); returns seconds per call. */
function timePerCall (fn: () => void, budgetMs: number): number {
  fn()
  let calls = 0
  const start = performance.now()
  while (performance.now() - start < budgetMs) {
    fn()
    calls++
  }
  return (performance.now() - start) / 1000 / calls
}

async function timePerCallAsync (fn: () => Promise<void>, budgetMs: number): Promise<number> {
  await fn()
  let calls = 0
  const start = performance.now()
  while (performance.now() - start < budgetMs) {
    await fn()
    calls++
  }
  return (performance.now() - start) / 1000 / calls
}

function randomMatrix (n: number): Float32Array {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = Math.random() - 0.5
  return out
}

function matmulGflops (kernel: Kernel, m: number, n: number, k: number, budgetMs: number): number {
  const a = randomMatrix(m * k)
  const b = randomMatrix(n * k)
  const c = new Float32Array(m * n)
  const seconds = timePerCall(() => kernel(a, b, c, m, n, k), budgetMs)
  return 2 * m * n * k / seconds / 1e9
}

const cores = os.availableParallelism()
console.log(`trainer bench — node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown cpu'}, ${cores} cores`)

// y = x Wᵀ for a batch of 8 × 128 tokens through the small model's MLP and a wider layer.
for (const [m, n, k] of [[1024, 172, 64], [1024, 344, 128]]) {
  const naive = matmulGflops(matmulABtNaive, m, n, k, 2000)
  const tiled = matmulGflops(matmulABt, m, n, k, 2000)
  console.log(`matmul [${m}x${k}]·[${n}x${k}]ᵀ: kernel ${tiled.toFixed(2)} GFLOP/s, naive ${naive.toFixed(2)} GFLOP/s, ratio ${(tiled / naive).toFixed(2)}x`)
}

const BATCH = 8
const SEQ_LEN = 128
const config = presetConfig('small')
const n = countParams(config)
const params = initParams(config, 1)
const grads = createParamSet(config)
const opt = new AdamW(n, { lr: 1e-3, beta2: 0.95, weightDecay: 0.01 })
const ids = new Int32Array(BATCH * (SEQ_LEN + 1))
for (let i = 0; i < ids.length; i++) ids[i] = Math.floor(Math.random() * config.vocab_size)
const report = (threads: number, seconds: number): void => {
  const tokensPerSecond = BATCH * SEQ_LEN / seconds
  console.log(`train small (${(n / 1e6).toFixed(2)}M params, batch ${BATCH} x seq ${SEQ_LEN}, ${threads} thread${threads === 1 ? '' : 's'}): ${(seconds * 1000).toFixed(0)} ms/step, ${Math.round(tokensPerSecond).toLocaleString('en-US')} tokens/s, ${(6 * n * tokensPerSecond / 1e9).toFixed(2)} GFLOP/s (6·params·tokens/s)`)
}
// One full optimizer step: loss and gradient, clipping, AdamW.
const single = timePerCall(() => {
  lossAndGrad(params, ids, BATCH, SEQ_LEN, grads)
  clipGradNorm(grads.flat, 1)
  opt.step(params.flat, grads.flat)
}, 12_000)
report(1, single)
if (cores > 1) {
  const threads = Math.min(cores, BATCH)
  const pool = await GradientPool.start(config, threads)
  const shared = await timePerCallAsync(async () => {
    await pool.lossAndGrad(params, ids, BATCH, SEQ_LEN, grads)
    clipGradNorm(grads.flat, 1)
    opt.step(params.flat, grads.flat)
  }, 12_000)
  await pool.close()
  report(threads, shared)
  console.log(`thread speedup: ${(single / shared).toFixed(2)}x on ${threads} threads`)
}
