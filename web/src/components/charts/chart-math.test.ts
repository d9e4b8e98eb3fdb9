// The dashboard's chart arithmetic: pure functions, so plain unit tests (the web vitest project).
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { axisTicks, cumulative, formatTimeTick, labelWidth, niceTicks, stackLayers, timeTicks, valueDomain } from './chart-math.ts'

test('nice ticks step by 1, 2, 2.5 or 5 × 10ⁿ and cover the range', () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10])
  assert.deepEqual(niceTicks(3.1, 5.6, 5), [3.5, 4, 4.5, 5, 5.5])
  assert.deepEqual(niceTicks(0, 1, 4), [0, 0.25, 0.5, 0.75, 1])
  assert.deepEqual(niceTicks(Number.NaN, 1, 4), [])
})

test('one point gets a range around it, not −1…1 around zero', () => {
  const loss = valueDomain([5.5])
  assert.ok(loss.min > 4 && loss.max < 7 && loss.min < 5.5 && loss.max > 5.5, JSON.stringify(loss))
  const round = valueDomain([3], { pad: 0, nonNegative: true })
  assert.deepEqual(axisTicks(round, 4, 'integer'), [3], 'one round, one tick, and no negative rounds')
  const zero = valueDomain([0], { nonNegative: true })
  assert.deepEqual(zero, { min: 0, max: 1 })
  assert.ok(axisTicks(zero, 4, 'linear').every((t) => t >= 0))
  const firstRound = valueDomain([0], { pad: 0, nonNegative: true })
  assert.ok(!axisTicks(firstRound, 4, 'integer').includes(-1), 'round 0 alone has no round −1')
  const lonely = valueDomain([2], { nonNegative: true, singleSpan: 5 })
  assert.deepEqual(lonely, { min: 0, max: 4 }, 'a lone value clamped at zero stays in the middle')
})

test('domains pad the extent, include reference lines, and keep non-negative axes at zero or above', () => {
  assert.deepEqual(valueDomain([0, 10], { pad: 0.1 }), { min: -1, max: 11 })
  assert.deepEqual(valueDomain([0, 10], { pad: 0.1, nonNegative: true }), { min: 0, max: 11 })
  const withBaseline = valueDomain([3, 4], { include: [5.2, null] })
  assert.ok(withBaseline.max > 5.2, 'the baseline line is on screen')
  assert.deepEqual(valueDomain([]), { min: 0, max: 1 })
  assert.deepEqual(valueDomain([Number.NaN, Number.POSITIVE_INFINITY]), { min: 0, max: 1 })
})

test('integer axes show whole numbers only', () => {
  assert.deepEqual(axisTicks({ min: 0, max: 3 }, 7, 'integer'), [0, 1, 2, 3])
})

test('time ticks land on round clock times, and their labels match the step', () => {
  const start = new Date(2026, 10, 23, 14, 3, 17).getTime()
  const quarter = timeTicks(start, start + 2 * 3_600_000, 6)
  assert.equal(quarter.unit, 'minute')
  assert.ok(quarter.ticks.length >= 4 && quarter.ticks.length <= 9, `${quarter.ticks.length} ticks`)
  for (const t of quarter.ticks) assert.equal(new Date(t).getMinutes() % 15, 0, formatTimeTick(t, 'minute'))
  assert.equal(formatTimeTick(new Date(2026, 10, 23, 14, 30).getTime(), 'minute'), '14:30')
  const seconds = timeTicks(start, start + 40_000, 4)
  assert.equal(seconds.unit, 'second')
  assert.equal(formatTimeTick(seconds.ticks[0]!, 'second'), '14:03:20')
  const days = timeTicks(start, start + 10 * 86_400_000, 5)
  assert.equal(days.unit, 'day')
  for (const t of days.ticks) assert.equal(new Date(t).getHours(), 0)
  assert.equal(formatTimeTick(new Date(2026, 10, 25).getTime(), 'day'), 'Nov 25')
  assert.deepEqual(timeTicks(start, start, 4).ticks, [start], 'one instant, one tick')
})

test('stacked layers rest on each other; running totals add up', () => {
  assert.deepEqual(cumulative([1, 2, 3]), [1, 3, 6])
  assert.deepEqual(stackLayers([[1, 2], [3, 0], [1, 1]]), [[[0, 1], [0, 2]], [[1, 4], [2, 2]], [[4, 5], [2, 3]]])
  assert.deepEqual(stackLayers([]), [])
})

test('label widths grow with the text, so the y axis can fit its widest label', () => {
  assert.ok(labelWidth('5.50') < labelWidth('12.3M tok'))
  assert.equal(labelWidth(''), 0)
})
