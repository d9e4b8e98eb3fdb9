import { test } from 'vitest'
import assert from 'node:assert/strict'
import { RoundAccumulator } from './accumulator.ts'

test('the round\'s training loss is the token-weighted median of the claims: liars under half the tokens cannot move it out of the honest range', () => {
  const delta = new Float32Array([0.1, -0.2, 0.3])
  const round = (claims: Array<[number | undefined, number]>): number | null => {
    const acc = new RoundAccumulator('r', 3)
    for (const [loss, tokens] of claims) acc.fold(delta, tokens, loss)
    return acc.trainLoss()
  }
  // A mean made these Infinity and NaN.
  assert.equal(round([[3.2, 100], [3.0, 100], [1e308, 100]]), 3.2)
  assert.equal(round([[3.2, 100], [3.0, 100], [1e308, 50], [-1e308, 50]]), 3.1)
  assert.equal(round([[3.2, 100], [3.0, 100], [-1e6, 90]]), 3.0)
  // Weighted by tokens: the node that trained most of the round sets it.
  assert.equal(round([[2.5, 900], [4.0, 50], [4.1, 50]]), 2.5)
  assert.equal(round([[2.5, 100]]), 2.5)
  assert.equal(round([[2.5, 100], [3.5, 100]]), 3.0)
  // Claims that are missing or not finite are not counted; none at all is no figure.
  assert.equal(round([[undefined, 100], [Number.NaN, 100], [2.0, 10]]), 2.0)
  assert.equal(round([[undefined, 100]]), null)
  assert.equal(round([]), null)
})

test('foldEncoded counts the claim as fold does', async () => {
  const { encodePseudoGradient } = await import('@barnraise/protocol')
  const acc = new RoundAccumulator('r', 300)
  const payload = encodePseudoGradient('int8', new Float32Array(300).fill(0.01))
  acc.foldEncoded('int8', payload, 100, 4.5)
  acc.foldEncoded('int8', payload, 100, 1e308)
  acc.foldEncoded('int8', payload, 300, 4.0)
  assert.equal(acc.trainLoss(), 4.0)
  assert.equal(acc.tokens, 500)
})

test('mapping the sum in while reports fold loses none of them', async () => {
  const n = 9 * 1024 * 1024 + 5
  const acc = new RoundAccumulator('r', n)
  const delta = new Float32Array(n).fill(0.5)
  const mapping = acc.prefault()
  // A report folds between two of its slices (the first slice was mapped synchronously).
  acc.fold(delta, 2, undefined)
  await mapping
  acc.fold(delta, 2, undefined)
  const mean = acc.mean()
  for (const i of [0, 1024, 4 * 1024 * 1024, 8 * 1024 * 1024 + 2048, n - 1]) assert.equal(mean[i], 0.5, `value ${i}`)
  assert.equal(acc.sum[5 * 1024 * 1024], 2, 'the sum holds both folds')
})

test('a report folded a slice at a time into a plain sum gives the one-call fold\'s floats', async () => {
  const { encodePseudoGradient } = await import('@barnraise/protocol')
  const n = 3 * 512 + 300
  // topk has a header (no slices): it folds in one call, so it is not compared here.
  for (const codec of ['int8', 'fp16', 'fp32'] as const) {
    const payload = encodePseudoGradient(codec, Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.3) * 1e-2))
    const whole = new RoundAccumulator('r', n, false, { foldTarget: false })
    const sliced = new RoundAccumulator('r', n, false, { foldTarget: false, slice: 512 })
    for (const acc of [whole, sliced]) acc.foldEncoded(codec, payload, 3, 2.5)
    whole.foldEncoded(codec, payload, 7, 2.0)
    await sliced.foldEncodedInSlices(codec, payload, 7, 2.0)
    assert.deepEqual(sliced.sum, whole.sum, codec)
    assert.equal(sliced.tokens, 10)
    assert.equal(sliced.reports, 2)
    assert.equal(sliced.trainLoss(), whole.trainLoss())
  }
})

test('the close takes the mean in the sum\'s own memory, the mean\'s floats, and the spent accumulator folds nothing more', async () => {
  const { encodePseudoGradient } = await import('@barnraise/protocol')
  const n = 3 * 512 + 300
  const delta = (seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.3 + seed) * 1e-2)
  for (const foldTarget of [true, false]) {
    const acc = new RoundAccumulator('r', n, false, { foldTarget })
    acc.fold(delta(1), 3, 2.5)
    acc.foldEncoded('int8', encodePseudoGradient('int8', delta(2)), 7, 2.0)
    const mean = acc.mean()
    const taken = await acc.takeUpdateInSlices({ rule: 'mean' })
    assert.deepEqual(taken, mean, 'the floats mean() gives')
    assert.equal(taken, acc.sum, 'no model-sized buffer of its own')
    assert.equal(acc.trainLoss(), 2.0, 'the claims outlive the sum')
    assert.throws(() => { acc.fold(delta(3), 1, undefined) }, /spent on its close/)
    assert.throws(() => acc.foldEncoded('int8', encodePseudoGradient('int8', delta(3)), 1, undefined), /spent on its close/)
    assert.throws(() => acc.mean(), /spent on its close/)
    await assert.rejects(acc.takeUpdateInSlices({ rule: 'mean' }), /spent on its close/)
  }
  // No report: nothing to apply.
  assert.deepEqual(await new RoundAccumulator('r', 5).takeUpdateInSlices({ rule: 'mean' }), new Float32Array(5))
  // A rule over kept reports gives update()'s values, then lets the reports go.
  const kept = new RoundAccumulator('r', n, true)
  const twin = new RoundAccumulator('r', n, true)
  for (const acc of [kept, twin]) for (const seed of [1, 2, 3]) acc.fold(delta(seed), 10 * seed, undefined)
  assert.deepEqual(await kept.takeUpdateInSlices({ rule: 'median' }), twin.update({ rule: 'median' }))
  assert.throws(() => kept.update({ rule: 'median' }), /spent on its close/)
})

test('a round sums in a spent round\'s sum, zeroed, as in a new one: the same floats, a fold target still', async () => {
  const { encodePseudoGradient, isFoldTarget } = await import('@barnraise/protocol')
  const { zeroInSlices } = await import('./accumulator.ts')
  const n = 3 * 512 + 300
  const payload = (seed: number): Uint8Array => encodePseudoGradient('int8', Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.3 + seed) * 1e-2))
  for (const foldTarget of [true, false]) {
    const spent = new RoundAccumulator('r1', n, false, { foldTarget })
    spent.foldEncoded('int8', payload(1), 3, undefined)
    const sum = await spent.takeUpdateInSlices({ rule: 'mean' })
    // Zeroed a slice at a time: every slice, the ragged last one included.
    await zeroInSlices(sum, 512)
    assert.ok(sum.every((x) => x === 0))
    const reused = new RoundAccumulator('r2', n, false, { sum })
    const fresh = new RoundAccumulator('r2', n, false, { foldTarget })
    assert.equal(reused.sum, sum, 'no new buffer')
    assert.equal(isFoldTarget(reused.sum), isFoldTarget(fresh.sum), 'int8 folds take the same path')
    for (const acc of [reused, fresh]) for (const seed of [2, 3]) await acc.foldEncodedInSlices('int8', payload(seed), 5, undefined)
    assert.deepEqual(reused.sum, fresh.sum)
    assert.deepEqual(await reused.takeUpdateInSlices({ rule: 'mean' }), await fresh.takeUpdateInSlices({ rule: 'mean' }))
  }
  assert.throws(() => new RoundAccumulator('r', n, false, { sum: new Float32Array(n - 1) }), /holds the model's 1836 values, not 1835/)
})
