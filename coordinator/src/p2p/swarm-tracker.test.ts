import { test } from 'vitest'
import assert from 'node:assert/strict'
import { SwarmTracker } from './swarm-tracker.ts'

const blocks = (seed: Array<{ from: number, to: number }>): number[] => seed.flatMap((r) => Array.from({ length: r.to - r.from }, (_, i) => r.from + i))

test('simultaneous askers split the blocks evenly and each is offered the ones before it', () => {
  const tracker = new SwarmTracker({ isOnline: () => true })
  const seen: number[] = []
  for (let i = 0; i < 4; i++) {
    const joined = tracker.join('a'.repeat(64), `peer-${i}`, 10, 4)
    assert.deepEqual(joined.peers, Array.from({ length: i }, (_, j) => `peer-${j}`))
    seen.push(...blocks(joined.seed))
  }
  assert.deepEqual(seen.sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every block is given out exactly once')
  // A late joiner, beyond the nodes expected, takes nothing from the coordinator.
  assert.deepEqual(tracker.join('a'.repeat(64), 'late', 10, 4).seed, [])
})

test('a lone asker takes the whole blob; a member that went offline gives its share to the next', () => {
  const online = new Set(['first', 'second'])
  const tracker = new SwarmTracker({ isOnline: (p) => online.has(p) })
  assert.deepEqual(tracker.join('b'.repeat(64), 'first', 5, 1).seed, [{ from: 0, to: 5 }])
  online.delete('first')
  const second = tracker.join('b'.repeat(64), 'second', 5, 1)
  assert.deepEqual(second.peers, [], 'an offline member is not offered')
  assert.deepEqual(second.seed, [{ from: 0, to: 5 }])
})

test('a member that asks again keeps its share and takes the blocks nobody took; one that leaves is not offered', () => {
  const tracker = new SwarmTracker({ isOnline: () => true })
  const sha = 'c'.repeat(64)
  // Four nodes name the blob, two ask: half the blocks are still kept for the other two.
  assert.deepEqual(blocks(tracker.join(sha, 'x', 8, 4).seed), [0, 1])
  assert.deepEqual(blocks(tracker.join(sha, 'y', 8, 4).seed), [2, 3])
  // x waited in vain: the blocks kept for nodes that never asked are its now, with its own.
  assert.deepEqual(blocks(tracker.join(sha, 'x', 8, 4).seed), [0, 1, 4, 5, 6, 7])
  tracker.leave(sha, 'x')
  const z = tracker.join(sha, 'z', 8, 4)
  assert.deepEqual(z.peers, ['y'], 'x left; only y is offered')
  // x's six blocks are free again, shared among the three nodes still expected.
  assert.deepEqual(blocks(z.seed), [0, 1], 'the blocks x was given go back to the askers')
  tracker.leave(sha, 'y')
  tracker.leave(sha, 'z')
  assert.deepEqual(tracker.join(sha, 'w', 8, 1).seed, [{ from: 0, to: 8 }], 'with nobody left, the next asker takes everything')
})

test('shares are kept for the nodes expected only while the swarm is young', () => {
  let now = 0
  const tracker = new SwarmTracker({ isOnline: () => true, now: () => now })
  assert.deepEqual(blocks(tracker.join('e'.repeat(64), 'a', 8, 4).seed), [0, 1])
  now = 11_000
  assert.deepEqual(blocks(tracker.join('e'.repeat(64), 'b', 8, 4).seed), [2, 3, 4, 5, 6, 7], 'the others did not come: a late asker takes the rest')
})

test('the tracker forgets the least recently asked blob past its bound, and a revoked peer everywhere', () => {
  const tracker = new SwarmTracker({ isOnline: () => true })
  for (let i = 0; i < 300; i++) tracker.join(i.toString(16).padStart(64, '0'), 'p', 1, 1)
  assert.equal(tracker.size, 256)
  tracker.join('d'.repeat(64), 'bad', 4, 2)
  tracker.forget('bad')
  const next = tracker.join('d'.repeat(64), 'good', 4, 1)
  assert.deepEqual(next.peers, [])
  assert.deepEqual(next.seed, [{ from: 0, to: 4 }])
})

test('a node that holds the whole blob takes every free block, including those of members gone offline; shares given stay', () => {
  const online = new Set(['early', 'gone', 'maker', 'late'])
  const tracker = new SwarmTracker({ isOnline: (p) => online.has(p) })
  const sha = 'd'.repeat(64)
  assert.deepEqual(blocks(tracker.join(sha, 'early', 6, 3).seed), [0, 1])
  assert.deepEqual(blocks(tracker.join(sha, 'gone', 6, 3).seed), [2, 3])
  online.delete('gone')
  tracker.hold(sha, 'maker', 6)
  const late = tracker.join(sha, 'late', 6, 3)
  assert.deepEqual(late.seed, [], 'nothing is left to take from the coordinator')
  assert.deepEqual(late.peers, ['early', 'maker'])
  // The holder leaves: its blocks are the next asker's to take from the coordinator.
  tracker.leave(sha, 'maker')
  assert.deepEqual(blocks(tracker.join(sha, 'late', 6, 3).seed), [2, 3, 4, 5])
})

test('a holder that does not deliver costs an asker one re-ask: the blocks it claimed are then the asker\'s to take from the coordinator', () => {
  const tracker = new SwarmTracker({ isOnline: () => true })
  const sha = 'e'.repeat(64)
  tracker.hold(sha, 'claims-all', 4)
  assert.deepEqual(tracker.join(sha, 'asker', 4, 1).seed, [], 'first, the holder is trusted to serve')
  assert.deepEqual(blocks(tracker.join(sha, 'asker', 4, 1).seed), [0, 1, 2, 3], 'asking again, it takes what the holder claimed')
})

test('a holder that announced itself after an asker\'s last ask is a new peer to try, not a stall: its blocks stay its own until the asker asks again', () => {
  let now = 1_000
  const tracker = new SwarmTracker({ isOnline: () => true, now: () => now })
  const sha = 'f'.repeat(64)
  // A node joining mid-run asks first; two nodes whose units name the blob too are expected.
  assert.deepEqual(blocks(tracker.join(sha, 'late', 6, 3).seed), [0, 1])
  now += 500
  // They rebuild the base themselves and say so instead of asking.
  tracker.hold(sha, 'rebuilt-a', 6)
  tracker.hold(sha, 'rebuilt-b', 6)
  now += 1_000
  const again = tracker.join(sha, 'late', 6, 3)
  assert.deepEqual(blocks(again.seed), [0, 1], 'it keeps its own share and takes nothing the holders claimed')
  assert.deepEqual(again.peers, ['rebuilt-a', 'rebuilt-b'])
  now += 1_000
  // Stalled once more with the holders known to it: what they claimed is its to take.
  assert.deepEqual(blocks(tracker.join(sha, 'late', 6, 3).seed), [0, 1, 2, 3, 4, 5])
})
