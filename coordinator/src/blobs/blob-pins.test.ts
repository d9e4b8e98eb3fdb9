import { test } from 'vitest'
import assert from 'node:assert/strict'
import { BlobPins } from './blob-pins.ts'

/** A promise and the function that settles it, to stop a deletion at a chosen point. */
function gate (): { opened: Promise<void>, open: () => void } {
  let open!: () => void
  const opened = new Promise<void>((resolve) => { open = resolve })
  return { opened, open }
}

test('pinned bytes are not deleted; unpinned ones are, unless still used', async () => {
  const pins = new BlobPins()
  const unlinked: string[] = []
  const release = await pins.pin('a')
  const deleted = await pins.deleteUnlessPinned(['a', 'b', 'c'], async () => new Set(['c']), async (shas) => { unlinked.push(...shas) })
  assert.deepEqual(deleted, ['b'])
  assert.deepEqual(unlinked, ['b'])
  release()
  release()
  assert.equal(pins.pinned('a'), false, 'a release counts once')
  assert.deepEqual(await pins.deleteUnlessPinned(['a'], async () => new Set(), async (shas) => { unlinked.push(...shas) }), ['a'])
})

test('a writer that pins while the sweep is checking keeps the file', async () => {
  const pins = new BlobPins()
  const asked = gate()
  const answer = gate()
  const unlinked: string[] = []
  // The sweep has looked for rows (none yet), and a writer pins before it unlinks.
  const sweep = pins.deleteUnlessPinned(['x'], async () => { asked.open(); await answer.opened; return new Set() }, async (shas) => { unlinked.push(...shas) })
  await asked.opened
  let pinned = false
  const writer = pins.pin('x').then((release) => { pinned = true; return release })
  answer.open()
  assert.deepEqual(await sweep, [], 'the pin taken mid-check keeps the file')
  const release = await writer
  assert.equal(pinned, true)
  assert.deepEqual(unlinked, [])
  release()
})

test('a writer that pins mid-unlink waits for it, so its own write comes after', async () => {
  const pins = new BlobPins()
  const unlinking = gate()
  const unlinkDone = gate()
  const events: string[] = []
  const sweep = pins.deleteUnlessPinned(['y'], async () => new Set(), async () => { unlinking.open(); await unlinkDone.opened; events.push('unlinked') })
  await unlinking.opened
  const writer = pins.pin('y').then((release) => { events.push('writer may put'); return release })
  await new Promise((resolve) => setTimeout(resolve, 10))
  assert.deepEqual(events, [], 'the writer waits for the unlink in progress')
  unlinkDone.open()
  assert.deepEqual(await sweep, ['y'])
  ;(await writer)()
  assert.deepEqual(events, ['unlinked', 'writer may put'])
  // Bytes being deleted are not deleted twice at once.
  const slow = gate()
  const first = pins.deleteUnlessPinned(['z'], async () => { await slow.opened; return new Set() }, async () => {})
  assert.deepEqual(await pins.deleteUnlessPinned(['z'], async () => new Set(), async () => {}), [])
  slow.open()
  assert.deepEqual(await first, ['z'])
})
