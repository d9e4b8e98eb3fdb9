import { useLayoutEffect, useRef, useState } from 'react'
import type { ReactNode, RefObject } from 'react'
import { axisTicks, formatTimeTick, labelWidth, timeTicks } from './chart-math.ts'
import type { AxisKind, Domain } from './chart-math.ts'
import './charts.css'

/** One axis: its range, how its values behave, and how a tick reads. */
export interface AxisSpec {
  domain: Domain
  kind: AxisKind
  /** tick label; time axes format themselves when this is absent */
  format?: (value: number) => string
  title: string
}

/** Maps data to pixels inside the frame's plot area. */
export interface Scales {
  x: (value: number) => number
  y: (value: number) => number
  plot: { left: number, top: number, width: number, height: number }
  narrow: boolean
}

/** An entry under the chart: a swatch in the series' colours, its name and an optional note. */
export interface LegendItem { id: string, name: string, className: string, note?: string, shape?: 'line' | 'dashed' | 'area' }

/**
 * The width of the element `ref` points at, following resizes (the SVG is drawn at that pixel width).
 * Measured in a layout effect so the guessed first width is never painted nor seen by anything
 * that reads the layout: a chart that mounted at 640px on a phone widened the page for a frame.
 */
export function useWidth<T extends HTMLElement> (): [RefObject<T | null>, number] {
  const ref = useRef<T>(null)
  const [width, setWidth] = useState(640)
  useLayoutEffect(() => {
    const el = ref.current
    if (el === null) return
    setWidth(el.clientWidth)
    const observer = new ResizeObserver(([entry]) => { if (entry !== undefined) setWidth(Math.round(entry.contentRect.width)) })
    observer.observe(el)
    return () => { observer.disconnect() }
  }, [])
  return [ref, width]
}

function tickLabels (axis: AxisSpec, ticks: number[], count: number): string[] {
  if (axis.format !== undefined) return ticks.map(axis.format)
  if (axis.kind === 'time') {
    const { unit } = timeTicks(axis.domain.min, axis.domain.max, count)
    return ticks.map((t) => formatTimeTick(t, unit))
  }
  return ticks.map((t) => t.toLocaleString())
}

/**
 * The shared frame of every dashboard chart: a responsive SVG at the container's pixel width,
 * grid lines, axes with ticks sized to the width, the y title above the plot (so it can never
 * overlap the tick labels, however narrow the phone), the x title below, and a legend. The
 * series are drawn by `children` with the scales it is given.
 */
export function ChartFrame ({ x, y, height = 260, ariaLabel, legend, testId, children }: {
  x: AxisSpec
  y: AxisSpec
  height?: number
  ariaLabel: string
  legend?: LegendItem[]
  testId?: string
  children: (scales: Scales) => ReactNode
}): ReactNode {
  const [ref, width] = useWidth<HTMLDivElement>()
  const narrow = width < 480
  const yCount = narrow ? 4 : 5
  const xCount = narrow ? (x.kind === 'time' ? 3 : 4) : (x.kind === 'time' ? 5 : 7)
  const yTicks = axisTicks(y.domain, yCount, y.kind)
  const yLabels = tickLabels(y, yTicks, yCount)
  const xTicks = axisTicks(x.domain, xCount, x.kind)
  const xLabels = tickLabels(x, xTicks, xCount)
  // The y axis is as wide as its widest label; the title sits above the plot, not beside it.
  const left = Math.max(28, ...yLabels.map((l) => labelWidth(l))) + 12
  const lastX = xLabels.at(-1) ?? ''
  const pad = { top: 26, right: Math.max(narrow ? 10 : 16, Math.ceil(labelWidth(lastX) / 2)), bottom: 42, left }
  const plot = { left: pad.left, top: pad.top, width: Math.max(10, width - pad.left - pad.right), height: Math.max(10, height - pad.top - pad.bottom) }
  const span = (d: Domain): number => (d.max - d.min) || 1
  const scales: Scales = {
    x: (v) => plot.left + ((v - x.domain.min) / span(x.domain)) * plot.width,
    y: (v) => plot.top + (1 - (v - y.domain.min) / span(y.domain)) * plot.height,
    plot,
    narrow
  }
  const bottom = plot.top + plot.height
  return (
    <div className='chart' ref={ref} data-testid={testId} data-y-min={y.domain.min} data-y-max={y.domain.max} data-x-min={x.domain.min} data-x-max={x.domain.max}>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role='img' aria-label={ariaLabel}>
        <g className='chart-grid'>
          {yTicks.map((t) => <line key={`y${t}`} x1={plot.left} x2={plot.left + plot.width} y1={scales.y(t)} y2={scales.y(t)} />)}
        </g>
        <g className='chart-axis'>
          <line x1={plot.left} x2={plot.left + plot.width} y1={bottom} y2={bottom} />
          <line x1={plot.left} x2={plot.left} y1={plot.top} y2={bottom} />
          {yTicks.map((t, i) => (
            <text key={`yl${t}`} x={plot.left - 8} y={scales.y(t)} textAnchor='end' dominantBaseline='middle' data-testid='y-tick'>{yLabels[i]}</text>
          ))}
          {xTicks.map((t, i) => (
            <g key={`x${t}`}>
              <line x1={scales.x(t)} x2={scales.x(t)} y1={bottom} y2={bottom + 5} />
              <text x={scales.x(t)} y={bottom + 18} textAnchor='middle' data-testid='x-tick'>{xLabels[i]}</text>
            </g>
          ))}
          <text className='chart-axis-title' x={plot.left + plot.width / 2} y={height - 6} textAnchor='middle'>{x.title}</text>
          <text className='chart-axis-title' x={4} y={12} textAnchor='start' data-testid='y-title'>{y.title}</text>
        </g>
        {children(scales)}
      </svg>
      {legend !== undefined && legend.length > 0 && (
        <ul className='chart-legend'>
          {legend.map((l) => (
            <li key={l.id} className={l.className} data-testid='legend-item' data-series={l.id}>
              <svg width='22' height='10' aria-hidden='true'>
                {l.shape === 'area'
                  ? <rect x='1' y='1' width='20' height='8' rx='2' />
                  : <><line x1='1' x2='21' y1='5' y2='5' strokeDasharray={l.shape === 'dashed' ? '5 3' : undefined} />{l.shape !== 'dashed' && <circle cx='11' cy='5' r='3' />}</>}
              </svg>
              {l.name}{l.note !== undefined && <span className='muted'> {l.note}</span>}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}
