import { test } from 'vitest'
import assert from 'node:assert/strict'
import { encodedByteLength } from '@barnraise/protocol'
import { MAX_UPDATE_REPORTS, broadcastCodecOf, sendsAggregate, updateWorthSending, worthSending } from './round-update.ts'

const sha = (i: number): string => i.toString(16).padStart(64, '0')

test('an update is sent as its reports while they are fewer bytes than the int8 mean, and otherwise as that mean', () => {
  const params = 1_000_000
  const int8 = encodedByteLength('int8', params)
  const topk = encodedByteLength('topk', params)
  // topk: 0.032 bytes a value, so up to about 31 reports undercut one int8 mean.
  assert.equal(sendsAggregate(20, 20 * topk, 'int8', params), false)
  assert.equal(sendsAggregate(40, 40 * topk, 'int8', params), true)
  // A sparse broadcast's topk mean undercuts two topk reports; one report is the mean itself.
  assert.equal(sendsAggregate(1, topk, 'topk', params), false)
  assert.equal(sendsAggregate(2, 2 * topk, 'topk', params), true)
  assert.equal(sendsAggregate(1000, 1000 * topk, 'topk', params), true)
  // int8: from two reports on, the mean is fewer bytes; one report is the mean itself.
  assert.equal(sendsAggregate(1, int8, 'int8', params), false)
  assert.equal(sendsAggregate(2, 2 * int8, 'int8', params), true)
  assert.equal(sendsAggregate(0, 0, 'int8', params), false)
  // fp32 keeps its precision: its mean is the model's size, never worth it.
  assert.equal(sendsAggregate(3, 3 * 4 * params, 'fp32', params), true)
  assert.equal(updateWorthSending(3, 3 * 4 * params, 'fp32', params), false)
})

test('an update is worth sending while its reports or its int8 mean are smaller than the model and its list fits in a unit', () => {
  const params = 1_000_000
  assert.equal(updateWorthSending(20, 20 * 33_000, 'int8', params), true)
  assert.equal(updateWorthSending(100_000, 100_000 * 33_000, 'topk', params), true)
  // Four int8 reports outweigh the 4-byte-a-value model; their int8 mean does not, nor does a thousand's.
  assert.equal(updateWorthSending(4, 4 * 1_016_000, 'int8', params), true)
  assert.equal(updateWorthSending(1000, 1000 * 1_016_000, 'int8', params), true)
  // fp16: two bytes a value each; one report is worth it, and the fp16 mean of many.
  assert.equal(updateWorthSending(1, 2_000_000, 'fp16', params), true)
  assert.equal(updateWorthSending(100, 200_000_000, 'fp16', params), true)
  assert.equal(updateWorthSending(0, 0, 'int8', params), false)
  // A topk list too long for one control message, and not yet outweighing the mean: not sent.
  assert.equal(updateWorthSending(MAX_UPDATE_REPORTS + 1, 1000, 'int8', 10 ** 9), false)

  const update = (n: number, bytes: number) => ({ from: sha(0), reports: Array.from({ length: n }, (_, i) => ({ sha256: sha(i + 1), tokens: 4096, bytes })), outerLr: 0.7, outerMomentum: 0.9 })
  assert.equal(worthSending(update(20, 33_000), params), true)
  assert.equal(worthSending(update(4, 1_016_000), params), false)
  // A list too long for one control message is never sent, however small each report.
  assert.equal(worthSending(update(MAX_UPDATE_REPORTS * 2, 10), 10 ** 9), false)
  assert.equal(worthSending(update(MAX_UPDATE_REPORTS, 10), 10 ** 9), true)
  const aggregate = { from: sha(0), aggregate: { sha256: sha(1), bytes: 1_015_636, codec: 'int8' as const }, outerLr: 0.7, outerMomentum: 0.9 }
  assert.equal(worthSending(aggregate, params), true)
})

test('a round\'s mean goes out in the run\'s dense codec, int8 for topk runs, and topk where the broadcast is sparse', () => {
  assert.equal(broadcastCodecOf({ codec: 'int8' }), 'int8')
  assert.equal(broadcastCodecOf({ codec: 'fp16' }), 'fp16')
  assert.equal(broadcastCodecOf({ codec: 'topk' }), 'int8')
  assert.equal(broadcastCodecOf({ codec: 'topk', broadcast: 'dense' }), 'int8')
  // A node moved to a smaller codec never downloads a larger mean than its own.
  assert.equal(broadcastCodecOf({ codec: 'fp32', codecs: ['fp32', 'fp16'] }), 'fp16')
  assert.equal(broadcastCodecOf({ codec: 'topk', broadcast: 'sparse' }), 'topk')
  assert.equal(broadcastCodecOf({ codec: 'int8', broadcast: 'sparse' }), 'topk')
})
