import type { ReactNode } from 'react'
import { formatBytes } from '../lib/format.ts'

/** A labelled progress bar over bytes: "3.1 MB of 8.0 MB · 39%". */
export function Meter ({ label, done, total, testId }: { label: string, done: number, total: number, testId: string }): ReactNode {
  const pct = total > 0 ? Math.min(100, (done / total) * 100) : 0
  return (
    <div className='meter' data-testid={testId}>
      <div className='meter-head'><span className='meter-label'>{label}</span><span className='meter-value num small'>{formatBytes(done)} of {formatBytes(total)} · {pct.toFixed(0)}%</span></div>
      <div className='meter-bar' role='progressbar' aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(pct)}><span style={{ width: `${pct}%` }} /></div>
    </div>
  )
}
