import type { ReactNode } from 'react'
import { ChartFrame } from './ChartFrame.tsx'
import type { LegendItem } from './ChartFrame.tsx'
import { valueDomain } from './chart-math.ts'
import type { AxisKind } from './chart-math.ts'

/** One point of a line; `label` is what hovering it says. */
export interface LinePoint { x: number, y: number, label: string }

/** A line (and its markers) in the colours of `className` (charts.css). */
export interface LineSeries {
  id: string
  name: string
  className: string
  points: LinePoint[]
  dashed?: boolean
  /** hold each value until the next point (running totals, counts) instead of interpolating */
  step?: boolean
  /** hide the markers (long step lines) */
  markers?: boolean
  note?: string
}

/** A horizontal line across the plot: a goal, a baseline. */
export interface ReferenceLine { id: string, name: string, className: string, y: number, note?: string }

function pathOf (points: LinePoint[], step: boolean, sx: (v: number) => number, sy: (v: number) => number): string {
  return points.map((p, i) => {
    const x = sx(p.x).toFixed(1)
    const y = sy(p.y).toFixed(1)
    if (i === 0) return `M${x},${y}`
    return step ? `H${x} V${y}` : `L${x},${y}`
  }).join(' ')
}

/**
 * Lines over a shared frame, with optional reference lines included in the y range so they are
 * always on screen. Each marker's <title> gives its exact value on hover.
 */
export function LineChart ({ series, references = [], xKind, xTitle, xFormat, yTitle, yFormat, valueFormat, nonNegativeY = false, xDomainInclude = [], yDomainInclude = [], height, testId, pointTestId = 'chart-point', ariaLabel }: {
  series: LineSeries[]
  references?: ReferenceLine[]
  xKind: AxisKind
  xTitle: string
  xFormat?: (v: number) => string
  yTitle: string
  yFormat?: (v: number) => string
  /** how a point's value reads on hover; the tick format by default */
  valueFormat?: (v: number) => string
  nonNegativeY?: boolean
  /** x values the axis must reach, e.g. "now" for a running total */
  xDomainInclude?: number[]
  /** y values the axis must reach, e.g. 0 for counts, so a change of one node does not look like a cliff */
  yDomainInclude?: number[]
  height?: number
  testId?: string
  /** test hook on each marker */
  pointTestId?: string
  ariaLabel: string
}): ReactNode {
  const points = series.flatMap((s) => s.points)
  const x = valueDomain(points.map((p) => p.x), {
    pad: xKind === 'time' ? 0.02 : 0,
    nonNegative: xKind !== 'time',
    include: xDomainInclude,
    singleSpan: xKind === 'time' ? 60_000 : undefined
  })
  const y = valueDomain(points.map((p) => p.y), { nonNegative: nonNegativeY, include: [...references.map((r) => r.y), ...yDomainInclude] })
  const show = valueFormat ?? yFormat ?? ((v: number) => v.toLocaleString())
  const legend: LegendItem[] = [
    ...series.map((s) => ({ id: s.id, name: s.name, className: s.className, shape: s.dashed === true ? 'dashed' as const : 'line' as const, note: s.note ?? `(${s.points.length})` })),
    ...references.map((r) => ({ id: r.id, name: r.name, className: r.className, shape: 'dashed' as const, note: r.note }))
  ]
  return (
    <ChartFrame x={{ domain: x, kind: xKind, format: xFormat, title: xTitle }} y={{ domain: y, kind: 'linear', format: yFormat, title: yTitle }} height={height} legend={legend} testId={testId} ariaLabel={ariaLabel}>
      {(s) => (
        <>
          {references.map((r) => (
            <g key={r.id} className={`chart-reference ${r.className}`} data-testid='reference-line' data-series={r.id} data-y={r.y}>
              <line x1={s.plot.left} x2={s.plot.left + s.plot.width} y1={s.y(r.y)} y2={s.y(r.y)} strokeDasharray='6 4'>
                <title>{`${r.name}: ${show(r.y)}`}</title>
              </line>
            </g>
          ))}
          {series.map((line) => {
            const pts = [...line.points].sort((a, b) => a.x - b.x)
            return (
              <g key={line.id} className={`chart-series ${line.className}`} data-testid='chart-series' data-series={line.id}>
                {pts.length > 1 && <path d={pathOf(pts, line.step === true, s.x, s.y)} fill='none' strokeDasharray={line.dashed === true ? '6 4' : undefined} />}
                {(line.markers ?? true) && pts.map((p, i) => (
                  <circle key={i} cx={s.x(p.x)} cy={s.y(p.y)} r={pts.length > 60 ? 2 : 3.5} data-testid={pointTestId} data-series={line.id}>
                    <title>{`${line.name}: ${show(p.y)} · ${p.label}`}</title>
                  </circle>
                ))}
              </g>
            )
          })}
        </>
      )}
    </ChartFrame>
  )
}
