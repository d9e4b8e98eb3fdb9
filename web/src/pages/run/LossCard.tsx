import { useState } from 'react'
import type { ReactNode } from 'react'
import { useQuery } from '@tanstack/react-query'
import { useTRPC } from '../../lib/trpc.ts'
import { LossChart } from '../../components/LossChart.tsx'
import { Segmented } from '../../components/Form.tsx'
import { ChartIcon } from '../../components/Icons.tsx'
import { lossSeries } from './loss-series.ts'
import type { RunDetail } from './run-types.ts'

/** Training and validation loss with the unigram baseline, by round or by tokens. */
export function LossCard ({ run }: { run: RunDetail }): ReactNode {
  const [by, setBy] = useState<'round' | 'tokens'>('round')
  const trpc = useTRPC()
  const baseline = useQuery(trpc.metrics.run.queryOptions({ runId: run.summary.id })).data?.baselineLoss ?? null
  const series = lossSeries(run, by)
  const total = series.reduce((n, s) => n + s.points.length, 0)
  return (
    <section className='card section-card chart-card' aria-labelledby='loss-title' data-testid='loss-card' data-points={total}>
      <header className='section-head'>
        <div>
          <h2 id='loss-title' className='section-title'>Loss</h2>
          <p className='muted small'>Training loss is the nodes’ average over each round; validation loss is measured on held-out text at every checkpoint. The dashed line is the unigram baseline: what guessing from token frequencies alone scores on the same text.</p>
        </div>
        <Segmented label='Horizontal axis' value={by} onChange={setBy} testId='chart-axis-toggle' options={[{ value: 'round', label: 'By round' }, { value: 'tokens', label: 'By tokens' }]} />
      </header>
      {total === 0
        ? (
          <div className='chart-empty' data-testid='chart-empty'>
            <ChartIcon width='28' height='28' />
            <p>{run.summary.status === 'draft' ? 'The curve starts once the run is started and the first round closes.' : 'The first points appear when the first round closes. This updates by itself.'}</p>
          </div>
          )
        : <LossChart series={series} xKind={by} xLabel={by === 'round' ? 'Round' : 'Tokens trained'} yLabel='Loss (nats/token)' baseline={baseline} testId='loss-chart' />}
    </section>
  )
}
