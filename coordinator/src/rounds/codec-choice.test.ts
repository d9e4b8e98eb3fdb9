import { test } from 'vitest'
import assert from 'node:assert/strict'
import { encodedByteLength } from '@barnraise/protocol'
import { BLOCKING_UPLOAD_SHARE, UPLOAD_SAMPLE_MIN_BYTES, chooseCodec, uploadSample } from './codec-choice.ts'

// The 125M preset's parameter count: int8 is about 125 MB a report, topk about 4 MB.
const paramCount = 124_439_808
const int8 = encodedByteLength('int8', paramCount)
const topk = encodedByteLength('topk', paramCount)
const base = { allowed: ['int8', 'topk'] as const, preferred: 'int8' as const, paramCount, unitSeconds: 60, overlapped: false }

test('a node whose int8 report uploads within a tenth of its unit keeps int8; a slower one is moved to topk', () => {
  const fastEnough = int8 / (60 * BLOCKING_UPLOAD_SHARE)
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: fastEnough * 1.01 }), 'int8')
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: fastEnough * 0.99 }), 'topk')
  // 100 Mbit/s: int8 takes 10 s of a 60 s unit, more than its tenth.
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: 12.5e6 }), 'topk')
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: 125e6 }), 'int8')
})

test('overlapped, the upload hides behind the next unit, so a much slower link keeps the dense codec', () => {
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: 12.5e6, overlapped: true }), 'int8')
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: 1e6, overlapped: true }), 'topk')
})

test('an unmeasured node gets the run\'s codec; a link too slow for every codec gets the smallest', () => {
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: undefined }), 'int8')
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: Number.NaN }), 'int8')
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: -5 }), 'int8')
  assert.equal(chooseCodec({ ...base, uploadBytesPerSecond: 1 }), 'topk')
  assert.ok(topk < int8 / 20)
})

test('the choice steps down one size at a time and never past what the run allows or above its own codec', () => {
  const all = { ...base, allowed: ['fp32', 'fp16', 'int8', 'topk'] as const, preferred: 'fp16' as const }
  const fp16 = encodedByteLength('fp16', paramCount)
  const budget = 60 * BLOCKING_UPLOAD_SHARE
  // Fast enough for fp32, but the run prefers fp16: never larger than that.
  assert.equal(chooseCodec({ ...all, uploadBytesPerSecond: 1e12 }), 'fp16')
  assert.equal(chooseCodec({ ...all, uploadBytesPerSecond: fp16 / budget * 0.9 }), 'int8')
  assert.equal(chooseCodec({ ...all, uploadBytesPerSecond: int8 / budget * 0.9 }), 'topk')
  // A run that allows only fp16 and int8 never hands out topk, however slow the link.
  assert.equal(chooseCodec({ ...all, allowed: ['fp16', 'int8'], uploadBytesPerSecond: 1 }), 'int8')
})

test('an upload sample says nothing when it is too small to time a link or timed at nothing', () => {
  assert.equal(uploadSample(UPLOAD_SAMPLE_MIN_BYTES, 0.5), UPLOAD_SAMPLE_MIN_BYTES * 2)
  assert.equal(uploadSample(UPLOAD_SAMPLE_MIN_BYTES - 1, 0.5), null)
  assert.equal(uploadSample(1e6, 0), null)
  assert.equal(uploadSample(1e6, Number.POSITIVE_INFINITY), null)
  assert.equal(uploadSample(Number.NaN, 1), null)
})
