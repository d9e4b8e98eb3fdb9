import { test } from 'vitest'
import assert from 'node:assert/strict'
import { nextStatus } from './run-states.ts'

test('draft → running ⇄ paused → completed; finished runs stay finished', () => {
  assert.equal(nextStatus('draft', 'start'), 'running')
  assert.equal(nextStatus('running', 'pause'), 'paused')
  assert.equal(nextStatus('paused', 'resume'), 'running')
  assert.equal(nextStatus('running', 'stop'), 'completed')
  assert.equal(nextStatus('running', 'start'), undefined)
  assert.equal(nextStatus('completed', 'resume'), undefined)
  assert.equal(nextStatus('failed', 'start'), undefined)
  assert.equal(nextStatus('draft', 'pause'), undefined)
})
