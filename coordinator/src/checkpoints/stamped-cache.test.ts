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

test('concurrent loads of one stamp share one build; a failed build is not kept; a new stamp builds on the last value', async () => {
  const cache = new StampedCache<string>(4)
  let builds = 0
  let fail = true
  const build = async (previous: Promise<string | undefined>): Promise<string> => {
    builds++
    const before = await previous
    if (fail) throw new Error('the build failed')
    return `${before ?? ''}+`
  }
  const failed = await Promise.allSettled([cache.load('run', 's1', build), cache.load('run', 's1', build)])
  assert.deepEqual(failed.map((r) => r.status), ['rejected', 'rejected'])
  assert.deepEqual([builds, cache.size], [1, 0], 'both waited on one build, which left nothing behind')
  fail = false
  assert.deepEqual(await Promise.all([cache.load('run', 's1', build), cache.load('run', 's1', build)]), ['+', '+'])
  assert.equal(builds, 2)
  assert.equal(cache.get('run', 's1'), '+', 'stored once built')
  // A newer stamp while its build is under way: a third load waits for it and builds on it.
  const [s2, s3] = await Promise.all([cache.load('run', 's2', build), cache.load('run', 's3', build)])
  assert.deepEqual([s2, s3, builds], ['++', '+++', 4])
  assert.equal(cache.get('run', 's2'), undefined)
  assert.equal(cache.get('run', 's3'), '+++')
})

test('a byte budget drops the least recently used values, keeps none bigger than itself, and says what it dropped', () => {
  const dropped: string[] = []
  const cache = new StampedCache<string>({ entries: 100, bytes: 10, sizeOf: (v) => v.length, onDrop: (v) => dropped.push(v) })
  cache.set('a', 's', 'aaaa')
  cache.set('b', 's', 'bbbb')
  assert.equal(cache.bytes, 8)
  cache.get('a', 's')
  cache.set('c', 's', 'ccc')
  assert.deepEqual([cache.bytes, cache.size, dropped], [7, 2, ['bbbb']], 'b was the least recently used')
  cache.set('huge', 's', 'x'.repeat(11))
  assert.deepEqual([cache.get('huge', 's'), cache.bytes, cache.size], [undefined, 7, 2], 'too big to keep, and nothing else was dropped for it')
  cache.set('a', 't', 'A')
  assert.deepEqual([cache.bytes, dropped], [4, ['bbbb', 'aaaa']], 'a replaced value is dropped too')
  cache.deleteWhere((v) => v === 'ccc')
  assert.deepEqual([cache.bytes, [...cache.values()], dropped], [1, ['A'], ['bbbb', 'aaaa', 'ccc']])
})
