import { test } from 'vitest'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { plainTextProblem, plainTextSchema, toPlainText } from './plain-text.ts'
import { enrollRequestSchema } from './enroll.ts'
import { hardwareProfileSchema } from './hardware.ts'
import { unitDeclineSchema } from './work.ts'
import { decodeJsonMessage } from './json-messages.ts'
import { ProtocolError } from './errors.ts'

const HONEST = [
  'Lab B node 3', 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz', 'NVIDIA GeForce RTX 4090', 'AMD EPYC 7763 64-Core Processor',
  'Лаборатория №2', '東京の計算機', 'مختبر\u200F 7', 'node 🚀 ü ß', 'a  b', ''
]
const REFUSED_ANYWHERE = ['\u0000', '\u0001', '\u0007', '\u0008', '\u000b', '\u000c', '\u000d', '\u001b', '\u001f', '\u007f', '\u0085', '\u009b', '\u009f',
  '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\ud83d', '\ude80']

test('plain text: every script and emoji pass; controls, bidi overrides/isolates and unpaired surrogates are refused, saying which and where', () => {
  for (const text of HONEST) {
    assert.equal(plainTextProblem(text), undefined, JSON.stringify(text))
    assert.equal(plainTextProblem(text, 'multi-line'), undefined, JSON.stringify(text))
  }
  for (const ch of REFUSED_ANYWHERE) {
    const text = `ab${ch}c`
    for (const lines of ['single-line', 'multi-line'] as const) {
      const problem = plainTextProblem(text, lines)
      assert.ok(problem !== undefined, `${JSON.stringify(text)} ${lines}`)
      assert.match(problem, new RegExp(`character 3 is U\\+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} `))
      assert.match(problem, /replace them with spaces/)
    }
  }
  assert.match(plainTextProblem('admin\u202Egnp.exe')!, /U\+202E \(right-to-left override, a bidirectional formatting character\)/)
  assert.match(plainTextProblem('nul \u0000 here')!, /U\+0000 \(NUL, a control character\)/)
  // Positions count characters, not UTF-16 units: the emoji before is one.
  assert.match(plainTextProblem('🚀\u0007')!, /character 2 is U\+0007 \(bell/)
})

test('plain text: line feeds and tabs are allowed only in multi-line text; CR never', () => {
  for (const ch of ['\n', '\t']) {
    assert.ok(plainTextProblem(`a${ch}b`) !== undefined, 'single-line refuses it')
    assert.equal(plainTextProblem(`a${ch}b`, 'multi-line'), undefined, 'multi-line allows it')
  }
  assert.match(plainTextProblem('a\r\nb', 'multi-line')!, /U\+000D \(carriage return.*line feeds \(\\n\) and tabs are allowed/)
})

test('plain text: toPlainText makes any string pass, no longer than it was, and leaves plain text as it is', () => {
  for (const text of HONEST) assert.equal(toPlainText(text), text)
  assert.equal(toPlainText('admin\u202Egnp.exe\u0007\r\nLab B node'), 'admin gnp.exe   Lab B node')
  assert.equal(toPlainText('OOM\r\n\tat line 3\rnext \u001b[31mred\u0000', 'multi-line'), 'OOM\n\tat line 3\nnext  [31mred ')
  assert.equal(toPlainText('cut \ud83d'), 'cut  ', 'an unpaired surrogate becomes a space')
  // Any UTF-16 unit (unpaired surrogates included), weighted toward the refused and borderline ones.
  const unit = fc.oneof(fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), fc.constantFrom(...REFUSED_ANYWHERE, '\n', '\t', '\r\n', '😀', 'a'))
  fc.assert(fc.property(fc.string({ unit, maxLength: 40 }), fc.constantFrom('single-line' as const, 'multi-line' as const), (text, lines) => {
    const plain = toPlainText(text, lines)
    assert.equal(plainTextProblem(plain, lines), undefined, JSON.stringify(plain))
    assert.ok(plain.length <= text.length)
    if (plainTextProblem(text, lines) === undefined) assert.equal(plain, text)
  }), { numRuns: 1000 })
})

test('plain text schema: lengths as given, and the refusal names the field when it arrives in a message', () => {
  const schema = plainTextSchema({ min: 1, max: 5 })
  assert.equal(schema.safeParse('abcde').success, true)
  assert.equal(schema.safeParse('').success, false)
  assert.equal(schema.safeParse('abcdef').success, false)
  assert.equal(schema.safeParse('a\u0000').success, false)
  assert.equal(schema.optional().safeParse(undefined).success, true)

  const hardware = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'c', cpuCores: 1, memoryBytes: 1, gpus: [{ name: 'g', memoryMiB: 1, driverVersion: '550.1' }] }
  const enroll = { type: 'enroll', agentVersion: '1', hardware, name: 'Lab B node' }
  assert.equal(enrollRequestSchema.safeParse(enroll).success, true)
  const bad = (message: unknown, schema: Parameters<typeof decodeJsonMessage>[1]): string => {
    try {
      decodeJsonMessage(new TextEncoder().encode(JSON.stringify(message)), schema)
    } catch (err) {
      assert.ok(err instanceof ProtocolError && err.code === 'ERR_MALFORMED_MESSAGE', String(err))
      return err.message
    }
    throw new Error(`accepted ${JSON.stringify(message)}`)
  }
  assert.match(bad({ ...enroll, name: 'admin\u202Egnp.exe' }, enrollRequestSchema), /^name: must be plain text: character 6 is U\+202E/)
  assert.match(bad({ ...enroll, name: 'a\nb' }, enrollRequestSchema), /^name: .*U\+000A \(line feed/)
  assert.match(bad({ ...enroll, agentVersion: '1\u0000' }, enrollRequestSchema), /^agentVersion: /)
  assert.match(bad({ ...enroll, token: 'tok\u001b' }, enrollRequestSchema), /^token: /)
  for (const field of ['hostname', 'platform', 'arch', 'cpuModel'] as const) {
    assert.match(bad({ ...enroll, hardware: { ...hardware, [field]: 'x\u0007' } }, enrollRequestSchema), new RegExp(`^hardware\\.${field}: must be plain text`))
  }
  assert.match(bad({ ...enroll, hardware: { ...hardware, gpus: [{ name: 'RTX\u2066', memoryMiB: 1 }] } }, enrollRequestSchema), /^hardware\.gpus\.0\.name: /)
  assert.match(bad({ ...enroll, hardware: { ...hardware, gpus: [{ name: 'g', memoryMiB: 1, driverVersion: '5\u009b' }] } }, enrollRequestSchema), /^hardware\.gpus\.0\.driverVersion: /)
  assert.equal(hardwareProfileSchema.safeParse({ ...hardware, hostname: 'h\ud800' }).success, false, 'Postgres jsonb refuses an unpaired surrogate')

  const decline = { assignmentId: '2b9cf3c4-5c4f-4a53-9f4e-0d0f2b8e7a11', code: 'ERR_OUT_OF_MEMORY', message: 'CUDA out of memory.\n\tTried to allocate 2.00 GiB' }
  assert.equal(unitDeclineSchema.safeParse(decline).success, true, 'a multi-line message with a tab passes')
  assert.match(bad({ ...decline, code: 'ERR_\u001b[31mRED' }, unitDeclineSchema), /^code: .*U\+001B \(escape/)
  assert.match(bad({ ...decline, code: 'ERR\nX' }, unitDeclineSchema), /^code: /, 'a code is one line')
  assert.match(bad({ ...decline, message: 'nul \u0000 here' }, unitDeclineSchema), /^message: .*U\+0000 \(NUL/)
  assert.match(bad({ ...decline, message: '\u202Eevil reversed\u202C\n' }, unitDeclineSchema), /^message: .*U\+202E/)
  assert.match(bad({ ...decline, message: 'a\r\nb' }, unitDeclineSchema), /^message: .*carriage return/)
})
