import { test } from 'vitest'
import assert from 'node:assert/strict'
import { lossSeries } from './loss-series.ts'
import type { RunDetail } from './run-types.ts'

const round = (number: number, status: string, tokens: number, trainLoss: number | null): RunDetail['rounds'][number] =>
  ({ number, status, tokens, trainLoss }) as unknown as RunDetail['rounds'][number]

test('training loss per closed round and validation loss per checkpoint, by round or by cumulative tokens', () => {
  const run = {
    rounds: [round(2, 'closed', 300, 4.0), round(1, 'closed', 100, 5.0), round(3, 'open', 50, null)],
    checkpoints: [{ round: 0, tokensSeen: 0, valLoss: 5.5 }, { round: 2, tokensSeen: 400, valLoss: 4.2 }, { round: 1, tokensSeen: 100, valLoss: null }]
  } as unknown as Pick<RunDetail, 'rounds' | 'checkpoints'>
  const [train, val] = lossSeries(run, 'tokens')
  assert.deepEqual(train!.points.map((p) => [p.x, p.y]), [[100, 5.0], [400, 4.0]], 'x is the tokens trained after each round, rounds in order, the open one left out')
  assert.deepEqual(val!.points.map((p) => [p.x, p.y]), [[0, 5.5], [400, 4.2]], 'checkpoints without a loss are left out')
  const byRound = lossSeries(run, 'round')
  assert.deepEqual(byRound[0]!.points.map((p) => p.x), [1, 2])
  assert.deepEqual(byRound[1]!.points.map((p) => p.x), [0, 2])
})
