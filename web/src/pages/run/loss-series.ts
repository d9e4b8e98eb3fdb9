import { formatCount } from '../../lib/format.ts'
import type { ChartSeries } from '../../components/LossChart.tsx'
import type { RunDetail } from './run-types.ts'

/**
 * The loss chart's two series: training loss per listed closed round and validation loss per
 * checkpoint, by round or by tokens trained (counted from the run's start when older rounds
 * were left out: `omittedTokens`).
 */
export function lossSeries (run: Pick<RunDetail, 'rounds' | 'checkpoints'> & { omittedTokens?: number }, by: 'round' | 'tokens'): ChartSeries[] {
  const rounds = [...run.rounds].sort((a, b) => a.number - b.number)
  let cumulative = run.omittedTokens ?? 0
  const tokensAfter = new Map<number, number>()
  for (const r of rounds) { cumulative += r.tokens; tokensAfter.set(r.number, cumulative) }
  const train = rounds.filter((r) => r.trainLoss !== null && r.status === 'closed').map((r) => ({
    x: by === 'round' ? r.number : tokensAfter.get(r.number) ?? 0,
    y: r.trainLoss!,
    label: `round ${r.number}, ${formatCount(tokensAfter.get(r.number) ?? 0)} tokens`
  }))
  const val = run.checkpoints.filter((c) => c.valLoss !== null).map((c) => ({
    x: by === 'round' ? c.round : c.tokensSeen,
    y: c.valLoss!,
    label: `checkpoint of round ${c.round}, ${formatCount(c.tokensSeen)} tokens`
  }))
  return [
    { id: 'train', name: 'Training loss', points: train, className: 'series-train' },
    { id: 'val', name: 'Validation loss', points: val, className: 'series-val', dashed: true }
  ]
}
