import { test } from 'vitest'
import assert from 'node:assert/strict'
import { blockAvailability, pickBlock } from './block-choice.ts'

const bits = (s: string): Uint8Array => Uint8Array.from([...s].map((c) => c === '1' ? 1 : 0))

test('the block held by the fewest peers goes first; ties start from a random place', () => {
  const a = bits('111111')
  const b = bits('110011')
  const c = bits('100011')
  const available = blockAvailability([a, b, c, undefined], 6)
  assert.deepEqual([...available], [3, 2, 1, 1, 3, 3])
  const none = new Uint8Array(6)
  // Blocks 2 and 3 are held by one peer (a) only: whatever the random start, one of them.
  for (const r of [0, 0.2, 0.5, 0.9]) assert.ok([2, 3].includes(pickBlock(a, none, none, none, available, () => r)))
  // From peer b, block 1 (two copies) goes before those all three hold.
  for (const r of [0, 0.5, 0.9]) assert.equal(pickBlock(b, none, none, none, available, () => r), 1)
})

test('a block already here, reserved for the coordinator or on its way is never picked; nothing left gives -1', () => {
  const have = bits('1111')
  const available = blockAvailability([have], 4)
  assert.equal(pickBlock(have, bits('1101'), bits('0000'), bits('0000'), available, () => 0), 2)
  assert.equal(pickBlock(have, bits('1100'), bits('0010'), bits('0001'), available, () => 0), -1)
  // A peer whose bitfield was not counted yet still counts as one copy.
  assert.equal(pickBlock(have, bits('0000'), bits('0000'), bits('0000'), new Uint16Array(4), () => 0.5), 2)
})
