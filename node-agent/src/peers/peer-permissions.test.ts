import { test } from 'vitest'
import assert from 'node:assert/strict'
import { PeerPermissions } from './peer-permissions.ts'

test('the coordinator is asked once a minute per peer and blob, once for peers asking at once; an error refuses and is asked again', async () => {
  let now = 0
  const asked: string[] = []
  let failing = false
  const permissions = new PeerPermissions(async (sha, peer) => {
    asked.push(`${sha}/${peer}`)
    if (failing) throw new Error('coordinator unreachable')
    return peer === 'member'
  }, () => now)
  assert.deepEqual(await Promise.all([permissions.allows('a', 'member'), permissions.allows('a', 'member')]), [true, true])
  assert.equal(await permissions.allows('a', 'stranger'), false)
  assert.deepEqual(asked, ['a/member', 'a/stranger'], 'one question each')
  now = 59_000
  assert.equal(await permissions.allows('a', 'member'), true)
  assert.equal(asked.length, 2, 'remembered within the minute')
  now = 61_000
  failing = true
  assert.equal(await permissions.allows('a', 'member'), false, 'asked again after a minute; unreachable refuses')
  failing = false
  assert.equal(await permissions.allows('a', 'member'), true, 'and the failure was not remembered')
  assert.equal(asked.length, 4)
})
