import type { ReactNode } from 'react'
import { ChartFrame } from './ChartFrame.tsx'
import { stackLayers, valueDomain } from './chart-math.ts'
import type { AxisKind } from './chart-math.ts'

/** One band of the stack: a value per x position, in the colours of `className`. */
export interface AreaLayer { id: string, name: string, className: string, values: number[], note?: string }

/**
 * Layers stacked on one another over shared x positions (e.g. each lab's running token total
 * over time), so the top edge is the whole and each band one part of it.
 */
export function StackedAreaChart ({ xs, labels, layers, xKind, xTitle, yTitle, yFormat, height, testId, ariaLabel }: {
  xs: number[]
  /** what hovering position i says, e.g. "round 3" */
  labels: string[]
  layers: AreaLayer[]
  xKind: AxisKind
  xTitle: string
  yTitle: string
  yFormat?: (v: number) => string
  height?: number
  testId?: string
  ariaLabel: string
}): ReactNode {
  const bands = stackLayers(layers.map((l) => l.values))
  const tops = bands.at(-1)?.map(([, top]) => top) ?? []
  const x = valueDomain(xs, { pad: 0, nonNegative: xKind !== 'time', singleSpan: xKind === 'time' ? 60_000 : undefined })
  const y = valueDomain([0, ...tops], { pad: 0.05, nonNegative: true })
  const show = yFormat ?? ((v: number) => v.toLocaleString())
  return (
    <ChartFrame
      x={{ domain: x, kind: xKind, title: xTitle }}
      y={{ domain: y, kind: 'linear', format: yFormat, title: yTitle }}
      height={height}
      testId={testId}
      ariaLabel={ariaLabel}
      legend={layers.map((l) => ({ id: l.id, name: l.name, className: l.className, shape: 'area' as const, note: l.note }))}
    >
      {(s) => layers.map((layer, li) => {
        const band = bands[li]!
        // A single position has no width to fill: draw it as a bar a few pixels wide.
        const xsPx = xs.length === 1 ? [s.x(xs[0]!) - 4, s.x(xs[0]!) + 4] : xs.map((v) => s.x(v))
        const pts = xs.length === 1 ? [band[0]!, band[0]!] : band
        const upper = pts.map(([, top], i) => `${i === 0 ? 'M' : 'L'}${xsPx[i]!.toFixed(1)},${s.y(top).toFixed(1)}`).join(' ')
        const lower = pts.map(([bottom], i) => `L${xsPx[i]!.toFixed(1)},${s.y(bottom).toFixed(1)}`).reverse().join(' ')
        return (
          <g key={layer.id} className={`chart-area ${layer.className}`} data-testid='chart-layer' data-series={layer.id} data-total={band.at(-1)?.[1] ?? 0}>
            <path d={`${upper} ${lower} Z`} />
            {band.map(([bottom, top], i) => (
              <rect key={i} x={s.x(xs[i]!) - 3} y={s.y(top)} width={6} height={Math.max(0, s.y(bottom) - s.y(top))} className='chart-area-hit'>
                <title>{`${layer.name}: ${show(top - bottom)} · ${labels[i] ?? ''}`}</title>
              </rect>
            ))}
          </g>
        )
      })}
    </ChartFrame>
  )
}
