import type { ReactNode } from 'react'

export function Stat ({ label, value, hint, testId }: { label: string, value: ReactNode, hint?: ReactNode, testId?: string }): ReactNode {
  return (
    <div className='stat card' data-testid={testId}>
      <div className='stat-label'>{label}</div>
      <div className='stat-value'>{value}</div>
      {hint !== undefined && <div className='stat-hint'>{hint}</div>}
    </div>
  )
}

/**
 * A labelled progress bar: "1.2 of 2 GPU-hours". Without a goal it shows the amount alone and
 * says there is no goal; past the goal the bar is full and says so.
 */
export function Meter ({ label, value, goal, format, unit, testId, tone = 'brand', foot }: {
  label: string
  value: number
  goal: number | null
  format: (n: number) => string
  unit?: string
  testId?: string
  tone?: 'brand' | 'info' | 'success'
  /** replaces the default line under the bar ("No goal set", "Goal reached", "40% of the goal") */
  foot?: ReactNode
}): ReactNode {
  const pct = goal !== null && goal > 0 ? Math.min(100, (value / goal) * 100) : null
  const suffix = unit !== undefined ? ` ${unit}` : ''
  return (
    <div className='meter' data-testid={testId} data-value={value} data-goal={goal ?? undefined}>
      <div className='meter-head'>
        <span className='meter-label'>{label}</span>
        <span className='meter-value num'>
          {format(value)}{goal !== null ? <span className='muted'> of {format(goal)}{suffix}</span> : suffix}
        </span>
      </div>
      {pct !== null
        ? (
          <div className={`meter-bar meter-${tone}`} role='progressbar' aria-label={label} aria-valuemin={0} aria-valuemax={goal ?? undefined} aria-valuenow={value} aria-valuetext={`${format(value)} of ${format(goal!)}${suffix}`}>
            <span style={{ width: `${pct}%` }} />
          </div>
          )
        : <div className='meter-bar meter-empty' aria-hidden='true' />}
      <div className='meter-foot muted small'>
        {foot ?? (pct === null ? 'No goal set' : pct >= 100 ? 'Goal reached' : `${pct < 1 && pct > 0 ? '<1' : Math.round(pct)}% of the goal`)}
      </div>
    </div>
  )
}
