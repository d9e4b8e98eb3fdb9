import { test } from 'vitest'
import assert from 'node:assert/strict'
import { StampedCache } from './stamped-cache.ts'

test('a value is returned only for the stamp it was stored under', () => {
  const cache = new StampedCache<number>(4)
  cache.set('run', 'seq-7', 1)
  assert.equal(cache.get('run', 'seq-7'), 1)
  assert.equal(cache.get('run', 'seq-8'), undefined, 'a newer stamp misses')
  cache.set('run', 'seq-8', 2)
  assert.equal(cache.get('run', 'seq-7'), undefined, 'the older value is gone')
  assert.equal(cache.get('run', 'seq-8'), 2)
})

test('the least recently used entry is dropped past the bound', () => {
  const cache = new StampedCache<string>(2)
  cache.set('a', 's', 'A')
  cache.set('b', 's', 'B')
  assert.equal(cache.get('a', 's'), 'A') // a is now the most recent
  cache.set('c', 's', 'C')
  assert.equal(cache.size, 2)
  assert.equal(cache.get('b', 's'), undefined)
  assert.equal(cache.get('a', 's'), 'A')
  assert.equal(cache.get('c', 's'), 'C')
})
