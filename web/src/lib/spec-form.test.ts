import { test } from 'vitest'
import assert from 'node:assert/strict'
import { runSpecSchema } from '@barnraise/protocol/run-spec'
import { CODECS_BY_SIZE, buildSpec, fieldErrorMap, fieldId, initialForm, overlapWarning, smallerCodecs, validateSpec, withCodec, withSlowLinkCodec } from './spec-form.ts'

test('the default form with a name is a valid spec that stops after 100 rounds on the demo corpus', () => {
  const form = { ...initialForm(), name: 'first run' }
  const spec = buildSpec(form, null)
  assert.equal(spec.rounds, 100)
  assert.equal(spec.tokenTarget, undefined)
  assert.deepEqual(spec.dataset, { source: 'demo-corpus' })
  assert.equal(spec.recipe?.innerSteps, 20)
  assert.deepEqual(spec.defences, { aggregation: 'mean', screening: false, redundancy: 0 })
  assert.equal(spec.broadcast, 'dense')
  assert.equal(validateSpec(spec).size, 0)
  const sparse = buildSpec({ ...form, codec: 'topk', broadcast: 'sparse' }, null)
  assert.equal(sparse.broadcast, 'sparse')
  assert.equal(validateSpec(sparse).size, 0)
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

test('slow links may be given smaller codecs: the spec lists them after the run\'s own, only when one is ticked', () => {
  const form = { ...initialForm(), name: 'slow links' }
  assert.equal(buildSpec(form, null).codecs, undefined)
  assert.deepEqual([...CODECS_BY_SIZE].sort(), [...runSpecSchema.shape.codec.unwrap().options].sort(), 'every codec has a place in the size order')
  assert.deepEqual(smallerCodecs('fp32'), ['fp16', 'int8', 'topk'])
  assert.deepEqual(smallerCodecs('int8'), ['topk'])
  assert.deepEqual(smallerCodecs('topk'), [])
  const fp16 = withSlowLinkCodec(withSlowLinkCodec(withCodec(form, 'fp16'), 'topk', true), 'int8', true)
  const spec = buildSpec(fp16, null)
  assert.deepEqual(spec.codecs, ['fp16', 'int8', 'topk'], 'the run\'s codec first, then the ticked ones largest first')
  assert.equal(validateSpec(spec).size, 0)
  assert.equal(buildSpec(withSlowLinkCodec(withSlowLinkCodec(fp16, 'int8', false), 'topk', false), null).codecs, undefined, 'unticking all of them drops codecs again')
})

test('choosing a smaller run codec drops ticked codecs that are no longer smaller', () => {
  const ticked = withSlowLinkCodec(withSlowLinkCodec(withCodec({ ...initialForm(), name: 'x' }, 'fp32'), 'fp16', true), 'topk', true)
  assert.deepEqual(withCodec(ticked, 'int8').slowLinkCodecs, ['topk'])
  assert.deepEqual(buildSpec(withCodec(ticked, 'int8'), null).codecs, ['int8', 'topk'])
  assert.deepEqual(withCodec(ticked, 'topk').slowLinkCodecs, [])
  assert.equal(buildSpec(withCodec(ticked, 'topk'), null).codecs, undefined)
})

test('topk for slow links with doubled units is named on the slow-link codecs, in the form\'s words', () => {
  const form = withSlowLinkCodec({ ...initialForm(), name: 'clash', redundancyPercent: '10' }, 'topk', true)
  const errors = validateSpec(buildSpec(form, null))
  assert.match(errors.get('codecs') ?? '', /doubled units cannot check topk reports.*untick topk or set doubled units to 0/)
  assert.equal(errors.has('defences.redundancy'), false)
  // topk as the run's own codec keeps the schema's wording on the doubled-units field.
  assert.match(validateSpec(buildSpec(withCodec(form, 'topk'), null)).get('defences.redundancy') ?? '', /redundancy cannot check topk/)
  // The server names one codec of the list by its index; the form shows it on the checkboxes.
  assert.equal(fieldErrorMap([{ field: 'codecs.1', message: 'bad codec' }]).get('codecs'), 'bad codec')
})

test('an overlapped run with DiLoCo\'s long-run outer step is warned about; one with lr 0.5 and no momentum is not', () => {
  const form = initialForm()
  assert.equal(overlapWarning(form), null, 'rounds one at a time')
  const overlapped = { ...form, overlap: 'delayed' as const }
  assert.match(overlapWarning(overlapped) ?? '', /outer lr 0\.7 and momentum 0\.9/)
  assert.equal(overlapWarning({ ...overlapped, recipe: { ...form.recipe, outerLr: '0.5', outerMomentum: '0' } }), null)
  assert.match(overlapWarning({ ...overlapped, recipe: { ...form.recipe, outerLr: '0.5', outerMomentum: '0.5' } }) ?? '', /momentum 0\.5/)
  assert.equal(overlapWarning({ ...overlapped, recipe: { ...form.recipe, outerLr: '', outerMomentum: '' } }), null, 'blank fields have their own errors')
})
