import { test } from 'vitest'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { decodeSafetensors, tensorToFloat32 } from '@barnraise/protocol'
import { AdamW } from './adamw.ts'
import { OptimizerError } from './optimizer-error.ts'
import { decodeAdamWState, encodeAdamWState } from './state-file.ts'

const golden = decodeSafetensors(readFileSync(new URL('../../test-data/golden/adamw.safetensors', import.meta.url)))
const get = (name: string): Float32Array => tensorToFloat32(golden.tensors.get(name)!).slice()

function relErr (a: Float32Array, b: Float32Array): number {
  let num = 0
  let den = 0
  for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2 }
  return Math.sqrt(num / den)
}

test('AdamW matches torch.optim.AdamW on the golden vectors', () => {
  const hp = JSON.parse(golden.metadata.hyperparameters) as { lr: number, beta1: number, beta2: number, eps: number, weight_decay: number }
  const params = get('param')
  const opt = new AdamW(params.length, { lr: hp.lr, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weightDecay: hp.weight_decay })
  for (let k = 1; k <= 3; k++) {
    const before = params.slice()
    opt.step(params, get(`grad_step${k}`))
    const want = get(`expected_after_step${k}`)
    // Also compare the update itself, which is ~1e-3 of the parameter: float32 rounding of the
    // stored parameters alone (2^-24 relative) is ~6e-5 of the update, so 1e-3 is the honest bar.
    const update = params.map((p, i) => p - before[i])
    const wantUpdate = want.map((p, i) => p - before[i])
    assert.ok(relErr(params, want) < 1e-6, `step ${k}: params rel err ${relErr(params, want)}`)
    assert.ok(relErr(update, wantUpdate) < 1e-3, `step ${k}: update rel err ${relErr(update, wantUpdate)}`)
  }
  assert.equal(opt.stepCount, 3)
})

test('AdamW state exported mid-run resumes identically, through a file too', () => {
  const params = get('param')
  const a = new AdamW(params.length, { lr: 0.01 })
  a.step(params, get('grad_step1'))
  const b = new AdamW(params.length, { lr: 0.01 })
  b.importState(decodeAdamWState(encodeAdamWState(a.exportState())))
  assert.equal(b.stepCount, 1)
  const pa = params.slice()
  const pb = params.slice()
  a.step(pa, get('grad_step2'))
  b.step(pb, get('grad_step2'))
  assert.deepEqual(pa, pb)
})

test('AdamW refuses wrong sizes and bad options with typed errors', () => {
  const opt = new AdamW(4, { lr: 1e-3 })
  const isCode = (code: string) => (err: unknown) => err instanceof OptimizerError && err.code === code
  assert.throws(() => opt.step(new Float32Array(4), new Float32Array(3)), isCode('ERR_SIZE_MISMATCH'))
  assert.throws(() => opt.importState({ step: 1, m: new Float32Array(5), v: new Float32Array(4) }), isCode('ERR_SIZE_MISMATCH'))
  assert.throws(() => new AdamW(4, { lr: Number.NaN }), isCode('ERR_BAD_OPTION'))
  assert.throws(() => new AdamW(4, { lr: 1e-3, beta2: 1 }), isCode('ERR_BAD_OPTION'))
  assert.throws(() => opt.step(new Float32Array(4), new Float32Array(4), -1), isCode('ERR_BAD_OPTION'))
  assert.throws(() => decodeAdamWState(new Uint8Array(16)), Error)
})
