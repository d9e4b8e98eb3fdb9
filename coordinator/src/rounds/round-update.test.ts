import { test } from 'vitest'
import assert from 'node:assert/strict'
import { MAX_UPDATE_REPORTS, updateWorthSending, worthSending } from './round-update.ts'

const sha = (i: number): string => i.toString(16).padStart(64, '0')

test('an update is sent only when its reports are smaller than the model and its list fits in a unit', () => {
  const params = 1_000_000
  // topk: 0.032 bytes a value, so many reports still undercut the 4 MB model.
  assert.equal(updateWorthSending(20, 20 * 33_000, params), true)
  // int8: four reports of 1.016 bytes a value outweigh a 4-byte-a-value model.
  assert.equal(updateWorthSending(3, 3 * 1_016_000, params), true)
  assert.equal(updateWorthSending(4, 4 * 1_016_000, params), false)
  assert.equal(updateWorthSending(0, 0, params), false)
  assert.equal(updateWorthSending(MAX_UPDATE_REPORTS + 1, 1000, 10 ** 9), false)

  const update = (n: number, bytes: number) => ({ from: sha(0), reports: Array.from({ length: n }, (_, i) => ({ sha256: sha(i + 1), tokens: 4096, bytes })), outerLr: 0.7, outerMomentum: 0.9 })
  assert.equal(worthSending(update(20, 33_000), params), true)
  assert.equal(worthSending(update(4, 1_016_000), params), false)
  // A list too long for one control message is never sent, however small each report.
  assert.equal(worthSending(update(MAX_UPDATE_REPORTS * 2, 10), 10 ** 9), false)
  assert.equal(worthSending(update(MAX_UPDATE_REPORTS, 10), 10 ** 9), true)
})
