import { test } from 'vitest'
import assert from 'node:assert/strict'
import { ReportScreen, screenReports } from './report-screening.ts'
import { sketchDelta, sketchFromBytes, sketchToBytes } from './delta-sketch.ts'
import { cosineSimilarity } from './robust-aggregation.ts'

/** A deterministic pseudo-random delta (an LCG), so tests need no fixtures. */
function randomDelta (n: number, seed: number, scale = 1e-2): Float32Array {
  let s = seed >>> 0
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = ((s / 2 ** 32) - 0.5) * scale
  }
  return out
}

const N = 5000
// Honest reports share the run's direction (the same model, the same kind of data) and differ by their own data.
const SHARED = randomDelta(N, 777)
const honest = (k: number): { id: string, delta: Float32Array, tokens: number } => {
  const own = randomDelta(N, 1000 + k)
  return { id: `honest-${k}`, delta: Float32Array.from(SHARED, (x, i) => x + own[i]!), tokens: 100 }
}

test('honest reports pass; a zero and a near-zero delta are free riders', () => {
  const reports = [honest(1), honest(2), honest(3), honest(4), { id: 'zero', delta: new Float32Array(N), tokens: 100 }, { id: 'tiny', delta: randomDelta(N, 9, 1e-5), tokens: 100 }]
  const { excluded } = screenReports(reports)
  assert.deepEqual([...excluded.keys()].sort(), ['tiny', 'zero'])
  assert.equal(excluded.get('zero')!.code, 'ERR_NEAR_ZERO')
})

test('a copy of another report in the same round is excluded; the first sender keeps theirs', () => {
  const a = honest(1)
  const copy = { id: 'copier', delta: Float32Array.from(a.delta, (x, i) => x + (i % 7 === 0 ? 1e-7 : 0)), tokens: 100 }
  const { excluded } = screenReports([a, honest(2), copy, honest(3)])
  assert.deepEqual([...excluded.keys()], ['copier'])
  assert.equal(excluded.get('copier')!.code, 'ERR_COPIED')
})

test('twins of one unit are not each other\'s copy; a third report with their bytes still is', () => {
  const a = honest(1)
  const { excluded } = screenReports([{ ...a, unit: 'u1' }, honest(2), { ...a, id: 'twin', unit: 'u1' }, { ...a, id: 'copier', unit: 'u9' }, { ...a, id: 'unnamed' }])
  assert.deepEqual([...excluded.keys()], ['copier', 'unnamed'])
  assert.ok([...excluded.values()].every((e) => e.code === 'ERR_COPIED'))
})

test('a retracted unit no longer steers the next round\'s direction nor counts as a copy', () => {
  const screen = new ReportScreen()
  screen.openRound(1)
  const a = honest(1)
  const flipped = { ...honest(2), id: 'flipped', unit: 'u2', delta: Float32Array.from(honest(2).delta, (x) => -x) }
  screen.admit(screen.check({ ...a, unit: 'u1' }))
  screen.admit(screen.check(flipped))
  screen.retract('u2')
  assert.equal(screen.check({ ...flipped, id: 'again', unit: 'u9' }).exclusion, null, 'no longer a copy of anything')
  screen.openRound(2)
  // The direction is round 1's honest report alone: the flipped one points against it.
  assert.equal(screen.check({ ...flipped, id: 'next', unit: 'u3' }).exclusion?.code, 'ERR_UNRELATED')
})

test('a replay of an earlier round\'s accepted report is excluded by its sketch alone', () => {
  const old = honest(7)
  const earlier = [{ round: 3, sketch: sketchDelta(old.delta) }]
  const { excluded } = screenReports([honest(1), honest(2), { id: 'replayer', delta: old.delta, tokens: 100 }], { earlier })
  assert.deepEqual([...excluded.keys()], ['replayer'])
  assert.match(excluded.get('replayer')!.message, /round 3/)
  // Sketches of unrelated deltas are far apart; of the same delta, identical.
  assert.ok(Math.abs(cosineSimilarity(sketchDelta(randomDelta(N, 1)), sketchDelta(randomDelta(N, 2)))) < 0.2)
})

test('scoring: an update that raises the held-out loss is harmful; a loss curve that does not match the delta is caught', () => {
  // A quadratic "loss" whose minimum is at `target`: honest deltas point towards it.
  const target = randomDelta(N, 42)
  const loss = (x: Float32Array): number => { let s = 0; for (let i = 0; i < N; i++) s += (x[i]! - target[i]!) ** 2; return s }
  const theta = new Float32Array(N)
  // Honest steps go a third of the way, each with its own noise (as different data gives).
  const step = (k: number): Float32Array => { const noise = randomDelta(N, k, 3e-3); return Float32Array.from(target, (t, i) => -0.3 * t + noise[i]!) }
  const base = loss(theta)
  const after = (delta: Float32Array): number => loss(Float32Array.from(theta, (x, i) => x - delta[i]!))
  const reports = [1, 2, 3, 4, 5].map((k) => ({ id: `honest-${k}`, delta: step(k), tokens: 100, claimedLoss: after(step(k)) }))
  const flipped = { id: 'flipper', delta: Float32Array.from(step(6), (x) => -x), tokens: 100, claimedLoss: after(step(6)) }
  const liar = { id: 'liar', delta: Float32Array.from(step(7), (x) => 0.05 * x), tokens: 100, claimedLoss: after(step(7)) }
  const { excluded, scores } = screenReports([...reports, flipped, liar], { evaluate: { base, after } })
  assert.equal(excluded.get('flipper')?.code, 'ERR_HARMFUL')
  assert.ok(scores.get('flipper')! < 0 && scores.get('honest-1')! > 0)
  assert.ok(excluded.has('liar'), 'a delta far short of its claimed loss is excluded')
  for (const r of reports) assert.ok(!excluded.has(r.id), `${r.id} is honest`)
})

test('a run\'s screen across rounds: this round\'s copies, earlier rounds\' replays, and a harmful first report with no reference yet', () => {
  const screen = new ReportScreen()
  screen.openRound(1)
  // Nothing accepted yet: only the two-sided rule applies, an update whose reverse does better.
  const first = screen.check(honest(1), { base: 5, after: 5.2, reversed: 4.8 })
  assert.equal(screen.check(honest(1), { base: 5, after: 5.05 }).exclusion, null, 'late in training one report may raise the loss a little: no reference, no verdict')
  assert.equal(first.exclusion?.code, 'ERR_HARMFUL')
  const good = screen.check(honest(2), { base: 5, after: 4.8 })
  assert.equal(good.exclusion, null)
  screen.admit(good)
  assert.equal(screen.check({ ...honest(2), id: 'again' }).exclusion?.code, 'ERR_COPIED', 'the same delta twice in one round')
  screen.openRound(2)
  const replay = screen.check({ ...honest(2), id: 'replay' })
  assert.equal(replay.exclusion?.code, 'ERR_REPLAYED')
  assert.match(replay.exclusion!.message, /round 1/)
  assert.equal(screen.check(honest(3)).exclusion, null, 'a new delta in the new round passes')
})

test('an update that points uphill is harmful even as a round\'s first report; an outsized one is excluded once norms are known', () => {
  const screen = new ReportScreen()
  screen.openRound(1)
  // Lowers the loss a little, but going the other way lowers it more: the sign was flipped.
  assert.equal(screen.check(honest(1), { base: 5.5, after: 5.45, reversed: 4.9 }).exclusion?.code, 'ERR_HARMFUL')
  for (const k of [2, 3, 4]) screen.admit(screen.check(honest(k), { base: 5.5, after: 4.9, reversed: 6 }))
  const scaled = { ...honest(5), delta: Float32Array.from(honest(5).delta, (x) => 100 * x) }
  assert.equal(screen.check(scaled).exclusion?.code, 'ERR_OUTSIZED')
  assert.equal(screen.check(honest(6), { base: 5.5, after: 4.95, reversed: 6.1 }).exclusion, null)
})

test('scores are compared within a round: a later round\'s smaller improvements are not harmful', () => {
  const screen = new ReportScreen()
  screen.openRound(1)
  for (const k of [1, 2, 3, 4]) screen.admit(screen.check(honest(k), { base: 5.5, after: 3.2 + 0.01 * k }))
  screen.openRound(2)
  // Round 2 improves by about 0.2, a tenth of round 1's: still honest.
  for (const k of [5, 6, 7, 8]) {
    const v = screen.check(honest(k), { base: 3.2, after: 3.0 + 0.005 * k })
    assert.equal(v.exclusion, null, `honest-${k}`)
    screen.admit(v)
  }
})

test('from the second round on, a report unrelated to the run\'s direction (noise) or against it is excluded', () => {
  const screen = new ReportScreen()
  screen.openRound(1)
  // No direction yet in the first round: noise is not judged by it.
  assert.equal(screen.check({ id: 'noise-1', delta: randomDelta(N, 4242), tokens: 100 }).exclusion, null)
  for (const k of [1, 2, 3]) screen.admit(screen.check(honest(k)))
  screen.openRound(2)
  assert.equal(screen.check({ id: 'noise', delta: randomDelta(N, 4243), tokens: 100 }).exclusion?.code, 'ERR_UNRELATED')
  assert.equal(screen.check({ id: 'against', delta: Float32Array.from(honest(4).delta, (x) => -x), tokens: 100 }).exclusion?.code, 'ERR_UNRELATED')
  assert.equal(screen.check(honest(5)).exclusion, null)
})

test('in the first round the held-out gradient gives the direction: a flipped report is unrelated whatever arrives first; a previous round replaces it', () => {
  const screen = new ReportScreen()
  screen.openRound(1)
  screen.orient(sketchDelta(SHARED))
  const flipped = { id: 'flip', delta: honest(1).delta.map((x) => -x), tokens: 100 }
  const first = screen.check(flipped)
  assert.equal(first.exclusion?.code, 'ERR_UNRELATED')
  assert.match(first.exclusion!.message, /unrelated to the loss gradient on held-out data .* \(cosine -0\.\d+, under 0\.05\)/)
  const ok = screen.check(honest(2))
  assert.equal(ok.exclusion, null)
  screen.admit(ok)
  screen.admit(screen.check(honest(3)))
  // Round 2: the accepted reports' mean is the direction now; a later orient does not replace it.
  screen.openRound(2)
  screen.orient(sketchDelta(SHARED.map((x) => -x)))
  assert.equal(screen.check(honest(4)).exclusion, null)
  assert.match(screen.check(flipped).exclusion!.message, /what the previous round's accepted reports trained/)
})

test('a screen restored from stored sketches after a restart still refuses a replay, and keeps the last round\'s direction', () => {
  const live = new ReportScreen()
  live.openRound(1)
  const first = honest(1)
  const stored: Array<{ round: number, sketch: Float32Array }> = []
  for (const r of [first, honest(2), honest(3)]) {
    const v = live.check(r)
    live.admit(v)
    stored.push({ round: 1, sketch: sketchFromBytes(sketchToBytes(v.sketch))! })
  }
  // The coordinator restarts before round 2: a fresh screen knows nothing…
  const forgetful = new ReportScreen()
  forgetful.openRound(2)
  assert.equal(forgetful.check(first).exclusion, null)
  // …a restored one recognises the replay and points the way the last round went.
  const restored = new ReportScreen()
  restored.openRound(2)
  restored.restore(stored)
  assert.equal(restored.check(first).exclusion?.code, 'ERR_REPLAYED')
  assert.equal(restored.check({ id: 'flip', delta: honest(4).delta.map((x) => -x), tokens: 100 }).exclusion?.code, 'ERR_UNRELATED')
  assert.equal(restored.check(honest(5)).exclusion, null)
})

test('stored sketch bytes round-trip; truncated or non-finite bytes are not a sketch', () => {
  const sketch = sketchDelta(honest(1).delta)
  assert.deepEqual(sketchFromBytes(sketchToBytes(sketch)), sketch)
  assert.equal(sketchFromBytes(sketchToBytes(sketch).subarray(1)), null)
  const bad = Float32Array.from(sketch)
  bad[7] = Number.NaN
  assert.equal(sketchFromBytes(sketchToBytes(bad)), null)
})

test('overlapped rounds: a fork screens the next round while this one still accepts; its direction follows the round that closes', () => {
  const r1 = new ReportScreen()
  r1.openRound(1)
  const a = honest(1)
  r1.admit(r1.check(a))
  // Round 2 opens while round 1 still takes reports; round 1 is left as it was.
  const r2 = r1.fork(2)
  assert.equal(r1.check({ ...a, id: 'again' }).exclusion?.code, 'ERR_COPIED', 'round 1 still knows its own accepted report')
  assert.equal(r2.check({ ...a, id: 'replay' }).exclusion?.code, 'ERR_REPLAYED', 'round 2 sees it as an earlier round\'s')
  // A report round 1 accepts after the fork reaches round 2 as replay history.
  const b = honest(2)
  r1.admit(r1.check(b))
  assert.equal(r2.check({ ...b, id: 'late replay' }).exclusion, null, 'not known to round 2 until it is told')
  r2.rememberEarlier(1, [r1.check(b).sketch])
  assert.equal(r2.check({ ...b, id: 'late replay' }).exclusion?.code, 'ERR_REPLAYED')
  // Round 1 closes with a direction opposite to what round 2 was forked with: round 2 follows it.
  const flipped = (k: number): ReturnType<typeof honest> => ({ ...honest(k), delta: Float32Array.from(honest(k).delta, (x) => -x) })
  const r0 = new ReportScreen()
  r0.openRound(1)
  for (const k of [3, 4, 5]) r0.admit(r0.check(flipped(k)))
  r2.followDirection(r0)
  assert.equal(r2.check(honest(6)).exclusion?.code, 'ERR_UNRELATED', 'judged against the closed round\'s direction')
})
