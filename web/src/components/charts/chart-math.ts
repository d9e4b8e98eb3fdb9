/*
 * The arithmetic behind the dashboard's charts, kept free of React and the DOM so it is unit
 * tested (test/chart-math.test.ts): axis ranges, tick positions, time ticks, stacking.
 */

/** An axis range, min < max. */
export interface Domain { min: number, max: number }

/** How an axis's values behave: plain numbers, whole numbers (rounds, node counts), or epoch milliseconds. */
export type AxisKind = 'linear' | 'integer' | 'time'

/** "Nice" tick values (1, 2, 2.5, 5 × 10ⁿ) covering [min, max]. */
export function niceTicks (min: number, max: number, count: number): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return []
  if (min === max) { min -= 1; max += 1 }
  const rough = (max - min) / Math.max(1, count)
  const power = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power
  const ticks: number[] = []
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)))
  return ticks
}

/**
 * The range an axis shows for `values` (plus `include`, e.g. a goal or baseline line): the
 * data's extent widened by `pad` of its span on each side. One value, or several equal ones,
 * get a range around that value — never the −1…1 around zero a zero span would otherwise
 * give — and `nonNegative` axes (counts, rates, money) never go below zero.
 */
export function valueDomain (values: number[], opts: { pad?: number, nonNegative?: boolean, include?: Array<number | null | undefined>, singleSpan?: number } = {}): Domain {
  const all = [...values, ...(opts.include ?? [])].filter((v): v is number => v !== null && v !== undefined && Number.isFinite(v))
  if (all.length === 0) return { min: 0, max: 1 }
  let min = Math.min(...all)
  let max = Math.max(...all)
  if (min === max) {
    const half = opts.singleSpan ?? (min === 0 ? 1 : Math.abs(min) * 0.1)
    min -= half
    max += half
  } else {
    const pad = (max - min) * (opts.pad ?? 0.08)
    min -= pad
    max += pad
  }
  if (opts.nonNegative === true && min < 0) {
    // Keep a lone value off the axis line: it sits in the middle of [0, 2v] instead.
    if (all.every((v) => v === all[0]) && all[0]! > 0) max = 2 * all[0]!
    min = 0
  }
  return { min, max }
}

/** Ticks for an axis: nice numbers inside the domain; whole numbers only on integer axes. */
export function axisTicks (domain: Domain, count: number, kind: AxisKind): number[] {
  if (kind === 'time') return timeTicks(domain.min, domain.max, count).ticks
  const ticks = niceTicks(domain.min, domain.max, count).filter((t) => t >= domain.min - 1e-9 && t <= domain.max + 1e-9)
  return kind === 'integer' ? ticks.filter((t) => Number.isInteger(t)) : ticks
}

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const TIME_STEPS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY
]

/** What a time tick shows: seconds, minutes, hours of the day, or dates. */
export type TimeUnit = 'second' | 'minute' | 'day'

/**
 * Ticks at round clock times (every 1, 2, 5… seconds up to weeks) covering [min, max] epoch ms,
 * and the finest unit their labels need. Steps of a day or more land on local midnight.
 */
export function timeTicks (min: number, max: number, count: number): { ticks: number[], unit: TimeUnit } {
  if (!Number.isFinite(min) || !Number.isFinite(max) || max <= min) return { ticks: Number.isFinite(min) ? [min] : [], unit: 'minute' }
  const rough = (max - min) / Math.max(1, count)
  const step = TIME_STEPS.find((s) => s >= rough) ?? Math.ceil(rough / (30 * DAY)) * 30 * DAY
  const ticks: number[] = []
  if (step >= DAY) {
    const d = new Date(min)
    d.setHours(0, 0, 0, 0)
    const days = step / DAY
    for (let t = d.getTime(); t <= max; d.setDate(d.getDate() + days), t = d.getTime()) if (t >= min) ticks.push(t)
  } else {
    // Whole steps in local time: offset by the time zone so "every 15 min" lands on :00, :15…
    const offset = new Date(min).getTimezoneOffset() * MINUTE
    for (let t = Math.ceil((min - offset) / step) * step + offset; t <= max; t += step) ticks.push(t)
  }
  return { ticks, unit: step >= DAY ? 'day' : step >= MINUTE ? 'minute' : 'second' }
}

const pad2 = (n: number): string => String(n).padStart(2, '0')
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** "14:05:30", "14:05" or "Nov 23", in local time, as the tick unit needs. */
export function formatTimeTick (ms: number, unit: TimeUnit): string {
  const d = new Date(ms)
  if (unit === 'day') return `${MONTHS[d.getMonth()]} ${d.getDate()}`
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`
  return unit === 'second' ? `${hm}:${pad2(d.getSeconds())}` : hm
}

/** Running totals: [1, 2, 3] → [1, 3, 6]. */
export function cumulative (values: number[]): number[] {
  let sum = 0
  return values.map((v) => (sum += v))
}

/**
 * Stacks layers of equal length: for each layer and position, the band [bottom, top] it
 * occupies, each layer resting on the ones before it.
 */
export function stackLayers (layers: number[][]): Array<Array<[number, number]>> {
  const length = Math.max(0, ...layers.map((l) => l.length))
  const base = Array.from({ length }, () => 0)
  return layers.map((layer) => base.map((bottom, i) => {
    const top = bottom + (layer[i] ?? 0)
    base[i] = top
    return [bottom, top]
  }))
}

/**
 * Roughly how wide a tick label renders (px) at `fontPx`: digits and letters of the system UI
 * font average about 0.62 em. Used to size the y axis so labels never run into its title.
 */
export function labelWidth (text: string, fontPx = 11): number {
  return Math.ceil(text.length * fontPx * 0.62)
}
