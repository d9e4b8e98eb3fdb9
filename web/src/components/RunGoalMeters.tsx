import type { ReactNode } from 'react'
import type { RouterOutputs } from '../lib/trpc.ts'
import { formatHours, formatUsd } from '../lib/format.ts'
import { Meter } from './Stat.tsx'

type RunGoals = RouterOutputs['pledges']['mine'][number]['run']

/** The run's own goals: money pledged by everyone, and GPU-hours its nodes delivered, whoever pledged. */
export function RunGoalMeters ({ goals, compact = false }: { goals: RunGoals, compact?: boolean }): ReactNode {
  return (
    <div className={compact ? 'meters meters-compact' : 'meters'}>
      <Meter label='Run funding pledged' value={goals.pledgedUsd} goal={goals.fundingGoalUsd} format={formatUsd} testId='run-funding-goal' />
      <Meter
        label='Run compute delivered'
        value={goals.deliveredGpuHours}
        goal={goals.computeGoalGpuHours}
        format={formatHours}
        unit='GPU-h'
        tone='success'
        testId='run-compute-goal'
        foot={goals.deliveredCpuCoreHours > 0 ? <>{goals.computeGoalGpuHours !== null ? `${Math.round(Math.min(1, goals.deliveredGpuHours / Math.max(goals.computeGoalGpuHours, 1e-12)) * 100)}% of the goal · ` : ''}plus {formatHours(goals.deliveredCpuCoreHours)} CPU core-h from CPU-only machines</> : undefined}
      />
    </div>
  )
}
