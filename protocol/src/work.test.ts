import { test } from 'vitest'
import assert from 'node:assert/strict'
import { innerRecipeSchema, roundUpdateSchema, workRequestSchema, workUnitSchema } from './work.ts'

const sha = 'a'.repeat(64)
const update = { from: sha, reports: [{ sha256: sha, tokens: 10, bytes: 100 }], outerLr: 0.7, outerMomentum: 0.9 }

test('an update from a newer coordinator parses with the fields an agent does not know dropped; a contradictory one is refused', () => {
  const parsed = roundUpdateSchema.parse({ ...update, reports: [{ ...update.reports[0], signedBy: 'x' }], futureField: { anything: true } })
  assert.deepEqual(parsed, update)
  assert.equal(roundUpdateSchema.parse({ ...update, codec: 'topk' }).codec, 'topk')
  assert.equal(roundUpdateSchema.safeParse({ ...update, aggregate: { sha256: sha, bytes: 10, codec: 'int8' } }).success, false, 'reports and an aggregate at once')
  assert.equal(roundUpdateSchema.safeParse({ from: sha, aggregate: { sha256: sha, bytes: 10, codec: 'int8' }, codec: 'int8', outerLr: 1, outerMomentum: 0 }).success, false, 'only listed reports name a codec')
  assert.equal(roundUpdateSchema.safeParse({ ...update, reports: [{ sha256: 'nope', tokens: 10, bytes: 100 }] }).success, false)
})

test('a unit whose update this agent cannot read keeps the unit and drops the update (the node then downloads its base)', () => {
  const field = workUnitSchema.shape.update
  assert.deepEqual(field.parse(update), update)
  assert.equal(field.parse(undefined), undefined)
  assert.equal(field.parse({ from: sha, aggregate: { sha256: sha, bytes: 10, codec: 'topk' }, outerLr: 2, outerMomentum: 0 })?.aggregate?.codec, 'topk')
  assert.equal(field.parse({ from: sha, aggregate: { sha256: sha, bytes: 10, codec: 'a-codec-from-the-future' }, outerLr: 1, outerMomentum: 0 }), undefined)
  assert.equal(field.parse({ ...update, aggregate: { sha256: sha, bytes: 10, codec: 'int8' } }), undefined, 'a contradictory update is dropped too')
})

test('a recipe with beta1 or beta2 of 1 is refused (torch\'s AdamW refuses it too); the run spec\'s largest betas pass', () => {
  const recipe = { innerSteps: 10, batchSize: 4, seqLen: 32, lr: 1e-3, warmupSteps: 0, weightDecay: 0.1, beta1: 0.9, beta2: 0.95, gradClip: 1, seed: 1 }
  assert.equal(innerRecipeSchema.safeParse(recipe).success, true)
  assert.equal(innerRecipeSchema.safeParse({ ...recipe, beta1: 0.9999, beta2: 0.99999 }).success, true)
  assert.equal(innerRecipeSchema.safeParse({ ...recipe, beta1: 1 }).success, false)
  assert.equal(innerRecipeSchema.safeParse({ ...recipe, beta2: 1 }).success, false)
})

test('a work request may name the node\'s executor (the coordinator picks scorers by it); older agents omit it, and an unknown one is refused', () => {
  assert.equal(workRequestSchema.safeParse({ type: 'work' }).success, true)
  assert.deepEqual(workRequestSchema.parse({ type: 'work', executor: 'torch-cuda' }), { type: 'work', executor: 'torch-cuda' })
  assert.equal(workRequestSchema.safeParse({ type: 'work', executor: 'tpu' }).success, false)
})
