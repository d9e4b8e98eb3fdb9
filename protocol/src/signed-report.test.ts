import { test } from 'vitest'
import assert from 'node:assert/strict'
import { canonicalReportMetadataText, parseReportMetadata, reportMetadataSchema } from './signed-report.ts'
import type { ReportMetadata } from './signed-report.ts'

const id = '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f'
const v1: ReportMetadata = { runId: id, round: 3, assignmentId: id, peerId: 'peer', tokens: 40, computeSeconds: 1.25, lossCurve: [5, 4.5], codec: 'fp16', payloadBytes: 8, payloadSha256: 'd'.repeat(64) }

test('the parser reads back exactly what the encoder wrote, in every form', () => {
  assert.deepEqual(parseReportMetadata(canonicalReportMetadataText(v1)), v1)
  const v2: ReportMetadata = { ...v1, executor: 'torch-cuda' }
  assert.deepEqual(parseReportMetadata(canonicalReportMetadataText(v2)), v2)
  // Several devices: v3, the count after the executor.
  const v3: ReportMetadata = { ...v2, devices: 8 }
  const text = canonicalReportMetadataText(v3)
  assert.match(text, /^\["barnraise-report-v3",.*,"torch-cuda",8\]$/)
  assert.deepEqual(parseReportMetadata(text), v3)
})

test('a device count must be a whole number from 2 to 64, and comes with an executor', () => {
  const text = canonicalReportMetadataText({ ...v1, executor: 'torch-cuda', devices: 2 })
  for (const bad of ['1', '65', '2.5', '"2"', 'null']) assert.equal(parseReportMetadata(text.replace(/,2\]$/, `,${bad}]`)), undefined, bad)
  assert.equal(parseReportMetadata(text.replace('barnraise-report-v3', 'barnraise-report-v2')), undefined, 'v2 tag with the v3 length')
  assert.equal(reportMetadataSchema.safeParse({ ...v1, devices: 2 }).success, false, 'devices without an executor')
})

test('the parser refuses text that is not canonical report metadata', () => {
  const text = canonicalReportMetadataText(v1)
  assert.equal(parseReportMetadata('not json'), undefined)
  assert.equal(parseReportMetadata(JSON.stringify(v1)), undefined, 'an object, not the canonical array')
  assert.equal(parseReportMetadata(text.replace('barnraise-report-v1', 'barnraise-report-v2')), undefined, 'v2 tag with the v1 length')
  assert.equal(parseReportMetadata(text.replace('"fp16"', '"bf16"')), undefined, 'a codec the schema does not know')
  assert.equal(parseReportMetadata(text.replace(',40,', ',-40,')), undefined, 'negative tokens')
})

test('text that spells the same fields another way is refused: a signature covers bytes, and only the canonical bytes have one reading', () => {
  const text = canonicalReportMetadataText(v1)
  assert.deepEqual(parseReportMetadata(text), v1, 'the canonical text itself')
  const respelled = {
    'a space after a comma': text.replace(',3,', ', 3,'),
    'an exponent': text.replace(',40,', ',4e1,'),
    'a trailing zero': text.replace(',1.25,', ',1.250,'),
    'an escaped character': text.replace('"peer"', '"p\\u0065er"'),
    'a count past 2^53 that rounds to another': text.replace(',40,', ',9007199254740993,'),
    'a negative zero': text.replace(',8,', ',-0,'),
    'an id in upper case, one unit to the database and another to the ledger': text.replace(`,"${id}","peer"`, `,"${id.toUpperCase()}","peer"`)
  }
  for (const [what, other] of Object.entries(respelled)) {
    assert.notEqual(other, text, what)
    assert.equal(parseReportMetadata(other), undefined, what)
  }
})
