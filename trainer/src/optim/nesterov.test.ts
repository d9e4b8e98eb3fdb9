import { test } from 'vitest'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { decodeSafetensors, tensorToFloat32 } from '@barnraise/protocol'
import { NesterovSGD } from './nesterov.ts'
import { OptimizerError } from './optimizer-error.ts'
import { decodeNesterovState, encodeNesterovState } from './state-file.ts'

const golden = decodeSafetensors(readFileSync(new URL('../../test-data/golden/nesterov-outer.safetensors', import.meta.url)))
const get = (name: string): Float32Array => tensorToFloat32(golden.tensors.get(name)!).slice()

function relErr (a: Float32Array, b: Float32Array): number {
  let num = 0
  let den = 0
  for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2 }
  return Math.sqrt(num / den)
}

test('NesterovSGD matches torch SGD(nesterov=True) on the golden vectors', () => {
  const hp = JSON.parse(golden.metadata.hyperparameters) as { lr: number, momentum: number }
  const params = get('param')
  const opt = new NesterovSGD(params.length, { lr: hp.lr, momentum: hp.momentum })
  for (let k = 1; k <= 3; k++) {
    const before = params.slice()
    opt.step(params, get(`pseudo_grad_step${k}`))
    const want = get(`expected_after_step${k}`)
    const update = params.map((p, i) => p - before[i])
    const wantUpdate = want.map((p, i) => p - before[i])
    assert.ok(relErr(params, want) < 1e-4, `step ${k}: ${relErr(params, want)}`)
    assert.ok(relErr(update, wantUpdate) < 1e-4, `step ${k} update: ${relErr(update, wantUpdate)}`)
  }
})

test('the defaults are DiLoCo\'s lr 0.7, momentum 0.9, and the first step uses buffer = g', () => {
  const opt = new NesterovSGD(1)
  assert.equal(opt.lr, 0.7)
  assert.equal(opt.momentum, 0.9)
  const p = new Float32Array([0])
  opt.step(p, new Float32Array([1]))
  assert.equal(p[0], Math.fround(-0.7 * 1.9))
})

test('Nesterov state round-trips through a file, before and after the first step', () => {
  const fresh = new NesterovSGD(3)
  assert.deepEqual(decodeNesterovState(encodeNesterovState(fresh.exportState())), { step: 0, buffer: null })
  const a = new NesterovSGD(3)
  const pa = new Float32Array([1, 2, 3])
  a.step(pa, new Float32Array([0.1, -0.2, 0.3]))
  const b = new NesterovSGD(3)
  b.importState(decodeNesterovState(encodeNesterovState(a.exportState())))
  const pb = pa.slice()
  a.step(pa, new Float32Array([0.5, 0.5, 0.5]))
  b.step(pb, new Float32Array([0.5, 0.5, 0.5]))
  assert.deepEqual(pa, pb)
  const isCode = (code: string) => (err: unknown) => err instanceof OptimizerError && err.code === code
  assert.throws(() => b.importState({ step: 2, buffer: new Float32Array(4) }), isCode('ERR_SIZE_MISMATCH'))
  assert.throws(() => b.importState({ step: 2, buffer: null }), isCode('ERR_BAD_STATE'))
  assert.throws(() => b.step(pb, new Float32Array(2)), isCode('ERR_SIZE_MISMATCH'))
})
