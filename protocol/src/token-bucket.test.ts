import assert from 'node:assert/strict'
import { test } from 'vitest'
import { KeyedTokenBuckets, TokenBucket } from './token-bucket.ts'

test('a bucket starts full, takes whole tokens only, and refills at its rate up to its capacity', () => {
  const bucket = new TokenBucket({ perSecond: 2, capacity: 3 }, 0)
  assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)], [true, true, true, false])
  assert.equal(bucket.take(250), false, 'half a token is not one')
  assert.equal(bucket.take(500), true, 'one token after half a second at 2 a second')
  assert.equal(bucket.available(60_000), 3, 'never above capacity')
})

test('a clock stepping back refills nothing and does not rewind the bucket', () => {
  const bucket = new TokenBucket({ perSecond: 1, capacity: 1 }, 10_000)
  assert.equal(bucket.take(10_000), true)
  assert.equal(bucket.take(5_000), false)
  assert.equal(bucket.take(10_500), false, 'the step back did not move the refill\'s start earlier')
  assert.equal(bucket.take(11_000), true)
})

test('spend counts what already happened, down to empty and no further', () => {
  const bucket = new TokenBucket({ perSecond: 1, capacity: 2 }, 0)
  bucket.spend(0)
  bucket.spend(0)
  bucket.spend(0)
  assert.equal(bucket.available(0), 0)
  assert.equal(bucket.take(1000), true, 'one second refills one token, not less for the spend past empty')
})

test('keyed buckets: one per key, the least recently used forgotten past maxKeys', () => {
  const buckets = new KeyedTokenBuckets({ perSecond: 0, capacity: 1, maxKeys: 2 })
  assert.equal(buckets.get('a', 0).take(0), true)
  assert.equal(buckets.get('b', 0).take(0), true)
  assert.equal(buckets.get('a', 0).take(0), false, 'a is empty, and now the most recently used')
  assert.equal(buckets.peek('c'), undefined, 'peek creates nothing')
  assert.equal(buckets.get('c', 0).take(0), true)
  assert.equal(buckets.size, 2)
  assert.equal(buckets.peek('b'), undefined, 'b, least recently used, was forgotten')
  assert.equal(buckets.get('a', 0).take(0), false, 'a was kept')
})
