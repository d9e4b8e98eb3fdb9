import type { ReactNode } from 'react'
import { formatCount } from '../lib/format.ts'
import { LineChart } from './charts/LineChart.tsx'
import type { LinePoint, LineSeries, ReferenceLine } from './charts/LineChart.tsx'

export { niceTicks } from './charts/chart-math.ts'

export type ChartPoint = LinePoint
export interface ChartSeries { id: string, name: string, points: ChartPoint[], className: string, dashed?: boolean }

function formatLossTick (value: number): string {
  return value.toFixed(value >= 10 ? 0 : value >= 1 ? 2 : 3)
}

/**
 * The loss curve: training and validation loss by round or by tokens, over the shared chart
 * frame, with the run's unigram baseline as a dashed line when it is known (a model above it
 * has not yet learnt anything a frequency table could not).
 */
export function LossChart ({ series, xKind, xLabel, yLabel, baseline = null, height = 300, testId }: {
  series: ChartSeries[]
  xKind: 'round' | 'tokens'
  xLabel: string
  yLabel: string
  /** unigram baseline loss, same units as the series */
  baseline?: number | null
  height?: number
  testId?: string
}): ReactNode {
  const lines: LineSeries[] = series.map((s) => ({ ...s }))
  const references: ReferenceLine[] = baseline === null
    ? []
    : [{ id: 'baseline', name: 'Unigram baseline', className: 'series-baseline', y: baseline, note: baseline.toFixed(3) }]
  return (
    <LineChart
      series={lines}
      references={references}
      xKind={xKind === 'round' ? 'integer' : 'linear'}
      xTitle={xLabel}
      xFormat={xKind === 'tokens' ? formatCount : (v) => String(v)}
      yTitle={yLabel}
      yFormat={formatLossTick}
      valueFormat={(v) => v.toFixed(4)}
      height={height}
      testId={testId}
      pointTestId='loss-point'
      ariaLabel={`${yLabel} by ${xLabel.toLowerCase()}: ${series.map((s) => `${s.name}, ${s.points.length} points`).join('; ')}${baseline !== null ? `; unigram baseline ${baseline.toFixed(3)}` : ''}`}
    />
  )
}
