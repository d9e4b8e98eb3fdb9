import { test } from 'vitest'
import assert from 'node:assert/strict'
import { CheckQueue, PASSWORD_CHECK_LIMITS, hashPassword, verifyPassword } from './passwords.ts'
import { CoordinatorError } from '../errors.ts'

test('a hash verifies its own password only, and never stores it in clear', async () => {
  const stored = await hashPassword('correct horse battery')
  assert.ok(!stored.includes('correct'))
  assert.equal(await verifyPassword('correct horse battery', stored), true)
  assert.equal(await verifyPassword('correct horse batterY', stored), false)
  assert.equal(await verifyPassword('x', 'garbage'), false)
  assert.notEqual(await hashPassword('same'), await hashPassword('same'), 'salted')
})

/** Lets pending promise callbacks run (no time passes on any clock this depends on). */
const settle = async (): Promise<void> => { await new Promise((resolve) => { setImmediate(resolve) }) }

/** A check that runs until `finish` is called; `started` says whether the queue let it run yet. */
function heldCheck (queue: CheckQueue, familiar?: string): { started: () => boolean, finish: () => void, result: Promise<string> } {
  let started = false
  let finish = (): void => {}
  const result = queue.run(async () => {
    started = true
    await new Promise<void>((resolve) => { finish = resolve })
    return 'done'
  }, familiar === undefined ? {} : { familiar })
  return { started: () => started, finish: () => { finish() }, result }
}

const isBusy = (err: unknown): boolean => err instanceof CoordinatorError && err.code === 'ERR_BUSY'

test('strangers cannot fill the password checker: familiar checks keep a running place and a line of their own, served first, a few per account', async () => {
  const queue = new CheckQueue({ running: 2, strangerRunning: 1, strangerWaiting: 2, familiarWaiting: 2, perFamiliarAccount: 1 })
  const strangers = [0, 1, 2].map(() => heldCheck(queue))
  await assert.rejects(heldCheck(queue).result, isBusy, 'the strangers\' line is full')
  await settle()
  assert.deepEqual(strangers.map((s) => s.started()), [true, false, false], 'strangers hold no more than their running place')

  const owner = heldCheck(queue, 'owner@x.test')
  await settle()
  assert.ok(owner.started(), 'the owner\'s check runs at once in the place kept for familiar checks')
  // One account's checks past its share are strangers' (that line is full): its own account cannot take the share.
  await assert.rejects(heldCheck(queue, 'owner@x.test').result, isBusy)
  const regular = heldCheck(queue, 'regular@x.test')
  await settle()
  assert.equal(regular.started(), false, 'every running place is taken: it waits in the familiar line')

  strangers[0]!.finish()
  assert.equal(await strangers[0]!.result, 'done')
  await settle()
  assert.deepEqual([regular.started(), strangers[1]!.started()], [true, false], 'the familiar line is served first')
  regular.finish()
  await regular.result
  await settle()
  assert.equal(strangers[1]!.started(), true, 'then the strangers\' line')
  for (const check of [owner, strangers[1]!, strangers[2]!]) {
    check.finish()
    await settle()
  }
  assert.deepEqual(await Promise.all([owner.result, strangers[1]!.result, strangers[2]!.result]), ['done', 'done', 'done'])
  // Everything was given back: as many checks as there are places run again at once.
  const again = [heldCheck(queue), heldCheck(queue, 'a@x.test'), heldCheck(queue, 'b@x.test')]
  await settle()
  assert.deepEqual(again.map((c) => c.started()), [true, true, false])
  for (const check of again) { check.finish(); await settle() }
  await Promise.all(again.map(async (c) => await c.result))
})

test('with the coordinator\'s checker full of strangers\' hashes, a stranger is turned away and a familiar check still runs', async () => {
  const stored = await hashPassword('owner password 1')
  const held = PASSWORD_CHECK_LIMITS.strangerRunning + PASSWORD_CHECK_LIMITS.strangerWaiting
  // Each call takes its place before its first await, so these fill the strangers' share now.
  const flood = Array.from({ length: held }, async () => await hashPassword('flood'))
  await assert.rejects(verifyPassword('owner password 1', stored), isBusy)
  assert.equal(await verifyPassword('owner password 1', stored, { familiar: 'owner@x.test' }), true)
  await Promise.all(flood)
})
