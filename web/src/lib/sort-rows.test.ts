import { test } from 'vitest'
import assert from 'node:assert/strict'
import { nextSort, sortRows } from './sort-rows.ts'
import type { SortColumn } from './sort-rows.ts'

interface Row { name: string, tokens: number }
const columns: Array<SortColumn<Row>> = [
  { key: 'name', label: 'Name', value: (r) => r.name },
  { key: 'tokens', label: 'Tokens', value: (r) => r.tokens, numeric: true }
]
const rows: Row[] = [{ name: 'beta', tokens: 10 }, { name: 'alpha', tokens: 900 }, { name: 'gamma', tokens: 95 }]

test('numbers sort numerically (900 after 95), text alphabetically, either way', () => {
  assert.deepEqual(sortRows(rows, columns, { key: 'tokens', dir: 'desc' }).map((r) => r.tokens), [900, 95, 10])
  assert.deepEqual(sortRows(rows, columns, { key: 'tokens', dir: 'asc' }).map((r) => r.tokens), [10, 95, 900])
  assert.deepEqual(sortRows(rows, columns, { key: 'name', dir: 'asc' }).map((r) => r.name), ['alpha', 'beta', 'gamma'])
  assert.deepEqual(sortRows(rows, columns, { key: 'gone', dir: 'asc' }).map((r) => r.name), ['alpha', 'beta', 'gamma'], 'an unknown key sorts by the first column')
  assert.deepEqual(rows.map((r) => r.name), ['beta', 'alpha', 'gamma'], 'the input is not reordered')
})

test('a header click flips the same column; a new number column starts high to low, text A to Z', () => {
  assert.deepEqual(nextSort({ key: 'tokens', dir: 'desc' }, 'tokens', columns), { key: 'tokens', dir: 'asc' })
  assert.deepEqual(nextSort({ key: 'name', dir: 'asc' }, 'tokens', columns), { key: 'tokens', dir: 'desc' })
  assert.deepEqual(nextSort({ key: 'tokens', dir: 'desc' }, 'name', columns), { key: 'name', dir: 'asc' })
})
