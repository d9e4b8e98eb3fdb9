import { test } from 'vitest'
import assert from 'node:assert/strict'
import { buildSpec, fieldId, initialForm, validateSpec } from './spec-form.ts'

test('the default form with a name is a valid spec that stops after 100 rounds on the demo corpus', () => {
  const form = { ...initialForm(), name: 'first run' }
  const spec = buildSpec(form, null)
  assert.equal(spec.rounds, 100)
  assert.equal(spec.tokenTarget, undefined)
  assert.deepEqual(spec.dataset, { source: 'demo-corpus' })
  assert.equal(spec.recipe?.innerSteps, 20)
  assert.deepEqual(spec.defences, { aggregation: 'mean', screening: false, redundancy: 0 })
  assert.equal(validateSpec(spec).size, 0)
})

test('blank and out-of-range numbers are named in plain words on their own fields', () => {
  const form = { ...initialForm(), name: '', minNodes: '', recipe: { ...initialForm().recipe, seqLen: '4' } }
  const errors = validateSpec(buildSpec(form, null))
  assert.equal(errors.get('name'), 'give the run a name')
  assert.equal(errors.get('minNodes'), 'enter a number')
  assert.equal(errors.get('recipe.seqLen'), 'sequence length must be at least 8')
})

test('a token target replaces rounds, and "say when to stop" lands on the field the form shows', () => {
  const form = { ...initialForm(), name: 'by tokens', stopBy: 'tokens' as const, tokenTarget: '' }
  const spec = buildSpec(form, null)
  assert.equal(spec.rounds, undefined)
  assert.ok(validateSpec(spec).has('tokenTarget'))
  assert.equal(buildSpec({ ...form, tokenTarget: '1000000' }, null).tokenTarget, 1_000_000)
})

test('an uploaded dataset becomes shards; optional goals appear only when filled in', () => {
  const upload = { name: 'mine', train: ['a'.repeat(64)], validation: 'b'.repeat(64), trainTokens: 10, validationTokens: 5 }
  const spec = buildSpec({ ...initialForm(), name: 'x', datasetSource: 'upload', fundingGoalUsd: '500' }, upload)
  assert.deepEqual(spec.dataset, { source: 'shards', train: upload.train, validation: upload.validation })
  assert.equal(spec.fundingGoalUsd, 500)
  assert.equal(spec.computeGoalGpuHours, undefined)
  assert.equal(fieldId('recipe.seqLen'), 'f-recipe-seqLen')
})

test('doubled units are entered in percent and refused past half, on their own field', () => {
  const form = { ...initialForm(), name: 'checked', redundancyPercent: '10' }
  assert.equal(buildSpec(form, null).defences?.redundancy, 0.1)
  assert.equal(validateSpec(buildSpec(form, null)).size, 0)
  assert.equal(validateSpec(buildSpec({ ...form, redundancyPercent: '60' }, null)).get('defences.redundancy'), 'at most half the units can be doubled')
  assert.equal(validateSpec(buildSpec({ ...form, redundancyPercent: '' }, null)).get('defences.redundancy'), 'enter a number')
})
