import { test } from 'vitest'
import assert from 'node:assert/strict'
import { safeNext } from './safe-next.ts'

test('after signing in only paths on this site are followed', () => {
  assert.equal(safeNext('/runs/new'), '/runs/new')
  assert.equal(safeNext('/runs?tab=2#x'), '/runs?tab=2#x')
  for (const away of ['//evil.example', '/\\evil.example', '/\\/evil.example', 'https://evil.example', 'evil', '/a\\b', '/\tx', '']) assert.equal(safeNext(away), null, away)
  assert.equal(safeNext(null), null)
})
