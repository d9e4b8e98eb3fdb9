import { test } from 'vitest'
import assert from 'node:assert/strict'
import { lossSeries } from './loss-series.ts'
import type { RunDetail } from './run-types.ts'

const round = (number: number, tokens: number, trainLoss: number): RunDetail['rounds'][number] =>
  ({ number, status: 'closed', tokens, trainLoss }) as unknown as RunDetail['rounds'][number]

test('when runs.get left older rounds out, tokens are counted from the run\'s start, not from the first round listed', () => {
  const run = { rounds: [round(501, 100, 3.0), round(502, 100, 2.9)], checkpoints: [], omittedTokens: 50_000 }
  const [train] = lossSeries(run, 'tokens')
  assert.deepEqual(train!.points.map((p) => [p.x, p.y]), [[50_100, 3.0], [50_200, 2.9]])
})
