import { useEffect, useRef, useState } from 'react'
import type { ReactNode } from 'react'
import { formatCount } from '../lib/format.ts'

export interface ChartPoint { x: number, y: number, label: string }
export interface ChartSeries { id: string, name: string, points: ChartPoint[], className: string, dashed?: boolean }

/** "Nice" tick values (1, 2, 5 × 10ⁿ) covering [min, max]. */
export function niceTicks (min: number, max: number, count: number): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return []
  if (min === max) { min -= 1; max += 1 }
  const rough = (max - min) / Math.max(1, count)
  const power = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power
  const ticks: number[] = []
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)))
  return ticks
}

function useWidth<T extends HTMLElement> (): [React.RefObject<T | null>, number] {
  const ref = useRef<T>(null)
  const [width, setWidth] = useState(640)
  useEffect(() => {
    const el = ref.current
    if (el === null) return
    setWidth(el.clientWidth)
    const observer = new ResizeObserver(([entry]) => { if (entry !== undefined) setWidth(Math.round(entry.contentRect.width)) })
    observer.observe(el)
    return () => { observer.disconnect() }
  }, [])
  return [ref, width]
}

function formatTick (value: number, kind: 'round' | 'tokens' | 'loss'): string {
  if (kind === 'tokens') return formatCount(value)
  if (kind === 'round') return Number.isInteger(value) ? String(value) : ''
  return value.toFixed(value >= 10 ? 0 : value >= 1 ? 2 : 3)
}

/**
 * A hand-rolled, responsive SVG line chart: axes with nice ticks, one line plus markers per
 * series, a legend, and each point's value on hover (its <title>). The SVG is drawn at the
 * container's pixel width so text stays crisp at 375 px and 1280 px alike.
 */
export function LossChart ({ series, xKind, xLabel, yLabel, height = 300, testId }: {
  series: ChartSeries[]
  xKind: 'round' | 'tokens'
  xLabel: string
  yLabel: string
  height?: number
  testId?: string
}): ReactNode {
  const [ref, width] = useWidth<HTMLDivElement>()
  const narrow = width < 480
  const pad = { top: 16, right: narrow ? 12 : 20, bottom: 44, left: narrow ? 44 : 56 }
  const all = series.flatMap((s) => s.points)
  const plotW = Math.max(10, width - pad.left - pad.right)
  const plotH = Math.max(10, height - pad.top - pad.bottom)

  let xMin = Math.min(...all.map((p) => p.x))
  let xMax = Math.max(...all.map((p) => p.x))
  let yMin = Math.min(...all.map((p) => p.y))
  let yMax = Math.max(...all.map((p) => p.y))
  if (all.length === 0) { xMin = 0; xMax = 1; yMin = 0; yMax = 1 }
  if (xMin === xMax) { xMin -= xKind === 'round' ? 1 : Math.max(1, xMin * 0.1); xMax += xKind === 'round' ? 1 : Math.max(1, xMax * 0.1) }
  const ySpan = yMax - yMin || Math.abs(yMax) * 0.1 || 1
  yMin -= ySpan * 0.08
  yMax += ySpan * 0.08
  if (xKind !== 'round' || xMin >= 0) xMin = Math.max(xKind === 'round' ? xMin : 0, xMin)

  const yTicks = niceTicks(yMin, yMax, narrow ? 4 : 5).filter((t) => t >= yMin && t <= yMax)
  const xTicksRaw = niceTicks(xMin, xMax, narrow ? 4 : 7).filter((t) => t >= xMin && t <= xMax)
  const xTicks = xKind === 'round' ? xTicksRaw.filter((t) => Number.isInteger(t)) : xTicksRaw
  const sx = (x: number): number => pad.left + ((x - xMin) / (xMax - xMin)) * plotW
  const sy = (y: number): number => pad.top + (1 - (y - yMin) / (yMax - yMin)) * plotH

  return (
    <div className='chart' ref={ref} data-testid={testId}>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role='img' aria-label={`${yLabel} by ${xLabel.toLowerCase()}: ${series.map((s) => `${s.name}, ${s.points.length} points`).join('; ')}`}>
        <g className='chart-grid'>
          {yTicks.map((t) => <line key={`y${t}`} x1={pad.left} x2={pad.left + plotW} y1={sy(t)} y2={sy(t)} />)}
        </g>
        <g className='chart-axis'>
          <line x1={pad.left} x2={pad.left + plotW} y1={pad.top + plotH} y2={pad.top + plotH} />
          <line x1={pad.left} x2={pad.left} y1={pad.top} y2={pad.top + plotH} />
          {yTicks.map((t) => (
            <text key={`yl${t}`} x={pad.left - 8} y={sy(t)} textAnchor='end' dominantBaseline='middle'>{formatTick(t, 'loss')}</text>
          ))}
          {xTicks.map((t) => (
            <g key={`x${t}`}>
              <line x1={sx(t)} x2={sx(t)} y1={pad.top + plotH} y2={pad.top + plotH + 5} />
              <text x={sx(t)} y={pad.top + plotH + 18} textAnchor='middle'>{formatTick(t, xKind)}</text>
            </g>
          ))}
          <text className='chart-axis-title' x={pad.left + plotW / 2} y={height - 6} textAnchor='middle'>{xLabel}</text>
          <text className='chart-axis-title' transform={`translate(12 ${pad.top + plotH / 2}) rotate(-90)`} textAnchor='middle'>{yLabel}</text>
        </g>
        {series.map((s) => {
          const pts = [...s.points].sort((a, b) => a.x - b.x)
          const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')
          return (
            <g key={s.id} className={`chart-series ${s.className}`} data-testid='chart-series' data-series={s.id}>
              {pts.length > 1 && <path d={d} fill='none' strokeDasharray={s.dashed === true ? '6 4' : undefined} />}
              {pts.map((p, i) => (
                <circle key={i} cx={sx(p.x)} cy={sy(p.y)} r={pts.length > 60 ? 2 : 3.5} data-testid='loss-point' data-series={s.id}>
                  <title>{`${s.name}: ${p.y.toFixed(4)} · ${p.label}`}</title>
                </circle>
              ))}
            </g>
          )
        })}
      </svg>
      <ul className='chart-legend'>
        {series.map((s) => (
          <li key={s.id} className={s.className}>
            <svg width='22' height='10' aria-hidden='true'><line x1='1' x2='21' y1='5' y2='5' strokeDasharray={s.dashed === true ? '5 3' : undefined} /><circle cx='11' cy='5' r='3' /></svg>
            {s.name} <span className='muted'>({s.points.length})</span>
          </li>
        ))}
      </ul>
    </div>
  )
}
