import { test } from 'vitest'
import assert from 'node:assert/strict'
import type { WorkResponse, WorkUnit } from '@barnraise/protocol'
import { startLookAhead } from './look-ahead.ts'
import { presetConfig } from '@barnraise/trainer'
import { syntheticUnit } from './executors/synthetic-unit.ts'

const unit = (assignmentId: string): WorkUnit => ({ ...syntheticUnit(presetConfig('tiny'), { innerSteps: 1, batchSize: 1, seqLen: 8 }), assignmentId })

type Reply = Exclude<WorkResponse, { kind: 'refused' }>

function client (replies: Array<Reply | Error>): { requestWork: (d?: unknown, s?: unknown, after?: string) => Promise<Reply>, asked: Array<string | undefined> } {
  const asked: Array<string | undefined> = []
  return {
    asked,
    requestWork: async (_d, _s, after) => {
      asked.push(after)
      const next = replies.shift() ?? { kind: 'wait', retryAfterMs: 60_000, reason: 'nothing yet' }
      if (next instanceof Error) throw next
      return next
    }
  }
}

test('the look ahead asks past the current unit until the next one appears, then fetches its inputs once', async () => {
  const current = unit('00000000-0000-4000-8000-000000000001')
  const next: WorkUnit = { ...current, assignmentId: '00000000-0000-4000-8000-000000000002', round: current.round + 1 }
  const c = client([{ kind: 'wait', retryAfterMs: 1, reason: 'not yet' }, { kind: 'unit', unit: next }])
  const fetched: string[] = []
  const ahead = startLookAhead({ client: c, signal: new AbortController().signal, say: () => {} }, current, async (u) => { fetched.push(u.assignmentId) })
  for (let i = 0; i < 100 && fetched.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  await ahead.stop()
  assert.deepEqual(fetched, [next.assignmentId])
  assert.deepEqual(c.asked, [current.assignmentId, current.assignmentId], 'every question names the unit in training')
})

test('stopping ends the polling at once; a coordinator that refuses the question costs only the head start', async () => {
  const current = unit('00000000-0000-4000-8000-000000000001')
  const waiting = client([])
  const idle = startLookAhead({ client: waiting, signal: new AbortController().signal, say: () => {} }, current, async () => { assert.fail('nothing to fetch') })
  const started = Date.now()
  await idle.stop()
  assert.ok(Date.now() - started < 1000, 'a 60 s wait was cut short')

  const said: string[] = []
  const old = client([new Error('ERR_MALFORMED_MESSAGE: unknown field after')])
  const refused = startLookAhead({ client: old, signal: new AbortController().signal, say: (l) => { said.push(l) } }, current, async () => { assert.fail('nothing to fetch') })
  for (let i = 0; i < 100 && said.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  await refused.stop()
  assert.match(said.join('\n'), /could not look ahead to the next unit \(ERR_MALFORMED_MESSAGE/)
  assert.equal(old.asked.length, 1, 'it asked once and gave up')
})
