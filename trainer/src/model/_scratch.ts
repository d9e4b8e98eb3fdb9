import { presetConfig } from './presets.ts'
import { initParams, countParams } from './params.ts'
import { lossAndGrad, evaluateLoss } from './llama.ts'
for (const name of ['tiny', 'small']) {
const cfg = presetConfig(name)
const p = initParams(cfg, 1)
console.log(name, countParams(cfg))
const B = 8, T = 128
const ids = new Int32Array(B*(T+1)).map(() => Math.floor(Math.random()*256))
let g = lossAndGrad(p, ids, B, T).grads
for (let i = 0; i < 5; i++) { const t0 = performance.now(); const r = lossAndGrad(p, ids, B, T, g); console.log('step', (performance.now()-t0).toFixed(0), 'ms', r.loss) }
const t0 = performance.now(); evaluateLoss(p, ids, B, T); console.log('eval', (performance.now()-t0).toFixed(0))
}
