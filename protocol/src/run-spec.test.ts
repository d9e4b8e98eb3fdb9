import { test } from 'vitest'
import assert from 'node:assert/strict'
import { allowedCodecs, describeSpecErrors, runSpecSchema } from './run-spec.ts'

test('spec errors speak in words a form can show under its own labels', () => {
  const bad = runSpecSchema.safeParse({ name: '', minNodes: 5, maxNodes: 2, recipe: { seqLen: 2, innerSteps: 0 }, roundDeadlineSeconds: 1 })
  assert.equal(bad.success, false)
  const errors = describeSpecErrors(bad.error!)
  const fields = errors.map((e) => e.field)
  for (const f of ['name', 'minNodes', 'rounds', 'recipe.seqLen', 'recipe.innerSteps', 'roundDeadlineSeconds']) assert.ok(fields.includes(f), `${f} is reported: ${fields.join(', ')}`)
  for (const e of errors) {
    // The field path travels beside the message (the CLI prints it, the form puts the message
    // under its label), so a message naming a camelCase key reads as jargon under "Minimum nodes".
    assert.doesNotMatch(e.message, /\b[a-z]+[A-Z][A-Za-z]*\b/, `${e.field}: "${e.message}" names a schema key`)
  }
  assert.equal(errors.find((e) => e.field === 'minNodes')?.message, 'cannot be more than the maximum number of nodes')
})

test('overlapped rounds are off by default and may be screened and doubled (redundancy), but not with topk beside redundancy', () => {
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 3 }).overlap, 'none')
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 3, overlap: 'delayed' }).overlap, 'delayed')
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 3, overlap: 'delayed', defences: { screening: true } }).defences.screening, true)
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 3, overlap: 'delayed', codec: 'int8', defences: { redundancy: 0.1 } }).defences.redundancy, 0.1)
  const bad = runSpecSchema.safeParse({ name: 'r', rounds: 3, overlap: 'delayed', codec: 'topk', defences: { redundancy: 0.1 } })
  assert.equal(bad.success, false)
  assert.deepEqual(describeSpecErrors(bad.error!).map((e) => e.field), ['defences.redundancy'])
  assert.equal(runSpecSchema.safeParse({ name: 'r', rounds: 3, overlap: 'eager' }).success, false)
})

test('a run may let slow links use smaller codecs: its own codec among them, each once, and no topk beside redundancy', () => {
  const spec = runSpecSchema.parse({ name: 'r', rounds: 3, codec: 'int8', codecs: ['int8', 'topk'] })
  assert.deepEqual(allowedCodecs(spec), ['int8', 'topk'])
  assert.deepEqual(allowedCodecs(runSpecSchema.parse({ name: 'r', rounds: 3, codec: 'fp16' })), ['fp16'])
  const field = (input: object): string[] => {
    const bad = runSpecSchema.safeParse({ name: 'r', rounds: 3, ...input })
    assert.equal(bad.success, false, JSON.stringify(input))
    return describeSpecErrors(bad.error!).map((e) => e.field)
  }
  assert.deepEqual(field({ codec: 'int8', codecs: ['fp16', 'topk'] }), ['codecs'])
  assert.deepEqual(field({ codec: 'int8', codecs: ['int8', 'int8'] }), ['codecs'])
  assert.deepEqual(field({ codec: 'int8', codecs: [] }), ['codecs'])
  assert.deepEqual(field({ codec: 'int8', codecs: ['int8', 'gzip'] }), ['codecs.1'])
  assert.deepEqual(field({ codec: 'int8', codecs: ['int8', 'topk'], defences: { redundancy: 0.1 } }), ['defences.redundancy'])
})

test('a run\'s round means go out dense unless it asks for a sparse broadcast', () => {
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 3 }).broadcast, 'dense')
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 3, codec: 'topk', broadcast: 'sparse' }).broadcast, 'sparse')
  const bad = runSpecSchema.safeParse({ name: 'r', rounds: 3, broadcast: 'topk' })
  assert.equal(bad.success, false)
  assert.deepEqual(bad.error?.issues.map((i) => i.path.join('.')), ['broadcast'])
})

test('a topk run carries 0.7 of each residual into the next report unless it says otherwise, between 0 and 1', () => {
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 3 }).recipe.errorFeedbackDecay, 0.7)
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 3, recipe: { errorFeedbackDecay: 1 } }).recipe.errorFeedbackDecay, 1)
  assert.equal(runSpecSchema.parse({ name: 'r', rounds: 3, recipe: { errorFeedbackDecay: 0 } }).recipe.errorFeedbackDecay, 0)
  for (const bad of [-0.1, 1.5]) {
    const parsed = runSpecSchema.safeParse({ name: 'r', rounds: 3, recipe: { errorFeedbackDecay: bad } })
    assert.equal(parsed.success, false)
    assert.deepEqual(parsed.error?.issues.map((i) => [i.path.join('.'), i.message]), [['recipe.errorFeedbackDecay', 'between 0 and 1']])
  }
})

test('a run name is plain text: controls and bidirectional overrides are refused, naming the field and what is refused; every script passes', () => {
  for (const [name, what] of [['adminexe\u202egnp', /U\+202E \(right-to-left override, a bidirectional formatting character\)/], ['run\u001b[2J', /U\+001B \(escape, a control character\)/], ['two\nlines', /U\+000A \(line feed, a control character\)/], ['tab\there', /U\+0009/]] as const) {
    const bad = runSpecSchema.safeParse({ name, rounds: 3 })
    assert.equal(bad.success, false, JSON.stringify(name))
    const errors = describeSpecErrors(bad.error!)
    assert.deepEqual(errors.map((e) => e.field), ['name'])
    assert.match(errors[0]!.message, /^run name must be plain text: /)
    assert.match(errors[0]!.message, what)
    assert.match(errors[0]!.message, /Control characters .* bidirectional overrides and isolates .* are refused/)
  }
  for (const name of ['Лаборатория run', '東京 run 🚀', 'مختبر\u200f run']) assert.equal(runSpecSchema.parse({ name, rounds: 3 }).name, name)
  // Spaces and line breaks around a name are trimmed first, as before.
  assert.equal(runSpecSchema.parse({ name: '  tidy\n', rounds: 3 }).name, 'tidy')
})

test('a run name must show something, and a description is plain text that may run to several lines', () => {
  for (const name of ['\u200b', ' \u2060\u200b ', '\ufeff']) {
    const bad = runSpecSchema.safeParse({ name, rounds: 3 })
    assert.equal(bad.success, false, JSON.stringify(name))
    const errors = describeSpecErrors(bad.error!)
    assert.deepEqual(errors.map((e) => e.field), ['name'])
    assert.match(errors[0]!.message, /^(run name shows nothing: it holds only spaces and invisible characters; )?give the run a name$/)
  }
  assert.equal(runSpecSchema.parse({ name: 'a', rounds: 3, description: 'line one\nline two\tend' }).description, 'line one\nline two\tend')
  for (const description of ['\u001b[31mred', 'crlf\r\n', 'swap\u202eit']) {
    const bad = runSpecSchema.safeParse({ name: 'a', rounds: 3, description })
    assert.equal(bad.success, false, JSON.stringify(description))
    assert.deepEqual(describeSpecErrors(bad.error!).map((e) => e.field), ['description'])
  }
})

test('absurd numbers an organizer can type are refused with the bound, not stored', () => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ recipe: { warmupSteps: 1e12 } }, 'recipe.warmupSteps', /at most 10,000,000 warmup steps/],
    [{ recipe: { gradClip: 1e300 } }, 'recipe.gradClip', /at most 1,000,000/],
    [{ tokenTarget: 2 ** 52 }, 'tokenTarget', /at most 10\^15 tokens/],
    [{ computeGoalGpuHours: 1e20 }, 'computeGoalGpuHours', /GPU-hours/],
    [{ fundingGoalUsd: 1e20 }, 'fundingGoalUsd', /\$1,000,000,000,000/]
  ]
  for (const [input, path, message] of cases) {
    const parsed = runSpecSchema.safeParse({ name: 'r', rounds: 3, ...input })
    assert.ok(!parsed.success, path)
    const issue = parsed.error.issues.find((i) => i.path.join('.') === path)
    assert.match(issue?.message ?? JSON.stringify(parsed.error.issues), message)
  }
  assert.ok(runSpecSchema.safeParse({ name: 'r', tokenTarget: 1e12, recipe: { warmupSteps: 1000, gradClip: 5 }, computeGoalGpuHours: 50_000, fundingGoalUsd: 2e6 }).success, 'large honest values pass')
})
