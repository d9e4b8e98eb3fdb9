import { test } from 'vitest'
import assert from 'node:assert/strict'
import { parseMemorySize } from './memory-size.ts'

test('memory sizes: binary and decimal units in any case, decimals, a bare number as GiB', () => {
  const bytes = (text: string): number | string => { const r = parseMemorySize(text, '--max-memory'); return r.ok ? r.bytes : r.message }
  assert.equal(bytes('8GiB'), 8 * 2 ** 30)
  assert.equal(bytes('512MiB'), 512 * 2 ** 20)
  assert.equal(bytes('1.5 gib'), 1.5 * 2 ** 30)
  assert.equal(bytes('64KiB'), 65_536)
  assert.equal(bytes('2TiB'), 2 * 2 ** 40)
  assert.equal(bytes('8GB'), 8e9)
  assert.equal(bytes('500mb'), 5e8)
  assert.equal(bytes('0.5'), 2 ** 29, 'a bare number is GiB, as --max-memory took before')
  assert.equal(bytes(' .25GiB '), 2 ** 28)
})

test('a bad memory size is refused naming the flag and what it takes', () => {
  const message = (text: string): string => { const r = parseMemorySize(text, '--max-memory'); return r.ok ? `accepted ${r.bytes}` : r.message }
  assert.match(message('8 gigs'), /^--max-memory has an unknown unit "gigs": give a size such as 8GiB or 512MiB \(KiB, MiB, GiB, TiB, or KB, MB, GB, TB; a bare number is GiB\)$/)
  assert.match(message('-1GiB'), /^--max-memory cannot be "-1GiB": give a size such as 8GiB/)
  assert.match(message('0'), /^--max-memory must be more than zero/)
  assert.match(message('0.1B'), /unknown unit "B"/)
  assert.match(message('1e3GiB'), /cannot be "1e3GiB"/)
  assert.match(message(''), /cannot be ""/)
  assert.match(message('GiB'), /cannot be "GiB"/)
  assert.match(message('9999999999TiB'), /more memory than any machine has/)
  assert.match(message('Infinity'), /cannot be "Infinity"/)
})
