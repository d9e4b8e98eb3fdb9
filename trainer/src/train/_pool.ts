import { GradientPool } from './gradient-pool.ts'
import { presetConfig } from '../model/presets.ts'
import { initParams, createParamSet } from '../model/params.ts'
import { lossAndGrad } from '../model/llama.ts'
const cfg = presetConfig('small'); const p = initParams(cfg, 1)
const B = 8, T = 128
const ids = new Int32Array(B*(T+1)).map(() => Math.floor(Math.random()*256))
const ref = lossAndGrad(p, ids, B, T)
const refFlat = ref.grads.flat.slice()
for (const threads of [1, 2, 3]) {
  const pool = await GradientPool.start(cfg, threads)
  const g = createParamSet(cfg)
  const times: number[] = []
  let loss = 0
  for (let i = 0; i < 4; i++) { const t0 = performance.now(); loss = await pool.lossAndGrad(p, ids, B, T, g); times.push(performance.now() - t0) }
  let num = 0, den = 0; for (let i = 0; i < g.flat.length; i++) { num += (g.flat[i]-refFlat[i])**2; den += refFlat[i]**2 }
  console.log(threads, 'threads', times.map(t => t.toFixed(0)).join(' '), 'ms', 'loss diff', loss - ref.loss, 'grad rel', Math.sqrt(num/den))
  await pool.close()
}
