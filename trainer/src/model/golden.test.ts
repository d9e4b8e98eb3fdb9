import { test } from 'vitest'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { decodeLlamaGolden, relativeError } from './golden-file.ts'
import type { LlamaGolden } from './golden-file.ts'
import { evaluateLoss, forward, lossAndGrad } from './llama.ts'

const TOLERANCE = 1e-4

function load (name: string): LlamaGolden {
  return decodeLlamaGolden(readFileSync(new URL(`../../test-data/golden/${name}.safetensors`, import.meta.url)))
}

for (const name of ['llama-tiny-gqa', 'llama-tiny-tied']) {
  test(`${name}: logits, loss and every gradient match PyTorch within ${TOLERANCE}`, () => {
    const g = load(name)
    const out = forward(g.params, g.inputIds, g.batch, g.seqLen)
    assert.ok(relativeError(out.logits, g.logits) < TOLERANCE, `logits rel err ${relativeError(out.logits, g.logits)}`)
    assert.ok(Math.abs(out.loss - g.loss) / g.loss < TOLERANCE, `forward loss ${out.loss} vs ${g.loss}`)
    assert.ok(Math.abs(evaluateLoss(g.params, g.inputIds, g.batch, g.seqLen) - g.loss) / g.loss < TOLERANCE)

    const { loss, grads } = lossAndGrad(g.params, g.inputIds, g.batch, g.seqLen)
    assert.ok(Math.abs(loss - g.loss) / g.loss < TOLERANCE, `training loss ${loss} vs ${g.loss}`)
    assert.equal(grads.tensors.size, g.grads.size)
    for (const [tensorName, want] of g.grads) {
      const got = grads.tensors.get(tensorName)
      assert.ok(got !== undefined, `no gradient for ${tensorName}`)
      const err = relativeError(got.data, want)
      assert.ok(err < TOLERANCE, `${tensorName}: gradient rel err ${err}`)
    }
  })
}

test('a shorter, odd-length prefix gives the same logits as the prefix of the full sequence (causal mask, ragged tiles)', () => {
  const g = load('llama-tiny-gqa')
  const window = g.seqLen + 1
  const V = g.config.vocab_size
  for (const T of [1, 3, 7, 13]) {
    const ids = new Int32Array(g.batch * (T + 1))
    for (let b = 0; b < g.batch; b++) ids.set(g.inputIds.subarray(b * window, b * window + T + 1), b * (T + 1))
    const { logits } = forward(g.params, ids, g.batch, T)
    const want = new Float32Array(g.batch * T * V)
    for (let b = 0; b < g.batch; b++) want.set(g.logits.subarray(b * g.seqLen * V, (b * g.seqLen + T) * V), b * T * V)
    assert.ok(relativeError(logits, want) < TOLERANCE, `T=${T}: rel err ${relativeError(logits, want)}`)
  }
})
