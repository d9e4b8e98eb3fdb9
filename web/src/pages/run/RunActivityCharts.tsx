import { useState } from 'react'
import type { ReactNode } from 'react'
import { useQuery } from '@tanstack/react-query'
import { useTRPC } from '../../lib/trpc.ts'
import type { RouterOutputs } from '../../lib/trpc.ts'
import { formatCount, formatHours, formatUsd, plural } from '../../lib/format.ts'
import { UNIT_SHORT, UNIT_WORDS } from '../../lib/pledge-units.ts'
import type { PledgeKind } from '../../lib/pledge-units.ts'
import { LineChart } from '../../components/charts/LineChart.tsx'
import type { LinePoint, LineSeries, ReferenceLine } from '../../components/charts/LineChart.tsx'
import { StackedAreaChart } from '../../components/charts/StackedAreaChart.tsx'
import { cumulative } from '../../components/charts/chart-math.ts'
import { Segmented } from '../../components/Form.tsx'
import { ErrorState, LoadingRows } from '../../components/States.tsx'
import { ChartIcon } from '../../components/Icons.tsx'

type RunMetrics = RouterOutputs['metrics']['run']

const time = (iso: string): number => new Date(iso).getTime()
const clock = (iso: string): string => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })

function NotYet ({ children }: { children: ReactNode }): ReactNode {
  return (
    <div className='chart-empty' data-testid='chart-empty'>
      <ChartIcon width='28' height='28' />
      <p>{children}</p>
    </div>
  )
}

function ChartCard ({ id, title, description, testId, actions, children }: { id: string, title: string, description: ReactNode, testId: string, actions?: ReactNode, children: ReactNode }): ReactNode {
  return (
    <section className='card section-card chart-card' aria-labelledby={`${id}-title`} data-testid={testId}>
      <header className='section-head'>
        <div>
          <h3 id={`${id}-title`} className='section-title'>{title}</h3>
          <p className='muted small'>{description}</p>
        </div>
        {actions}
      </header>
      {children}
    </section>
  )
}

/** Tokens per second of the whole swarm, round by round. */
function ThroughputChart ({ m }: { m: RunMetrics }): ReactNode {
  const points: LinePoint[] = m.rounds.map((r) => ({ x: time(r.closedAt), y: r.tokensPerSecond, label: `round ${r.round}: ${formatCount(r.tokens)} tokens in ${r.seconds.toFixed(1)} s, closed ${clock(r.closedAt)}` }))
  return (
    <ChartCard id='throughput' title='Throughput' testId='throughput-card' description='Tokens each round added ÷ its wall-clock time: the whole swarm’s speed, waiting included.'>
      {points.length === 0
        ? <NotYet>Appears when the first round closes.</NotYet>
        : <LineChart
            series={[{ id: 'throughput', name: 'Tokens per second', className: 'series-throughput', points }]}
            xKind='time' xTitle='Time (round closed)' yTitle='Tokens / s' yFormat={formatCount} valueFormat={(v) => `${formatCount(v)} tok/s`}
            nonNegativeY yDomainInclude={[0]} height={220} testId='throughput-chart' ariaLabel={`Tokens per second over ${plural(points.length, 'round')}`}
          />}
    </ChartCard>
  )
}

/** How many nodes got work, and how many reported, in each round. */
function NodesChart ({ m }: { m: RunMetrics }): ReactNode {
  const given: LinePoint[] = m.rounds.map((r) => ({ x: time(r.closedAt), y: r.nodes, label: `round ${r.round}` }))
  const reported: LinePoint[] = m.rounds.map((r) => ({ x: time(r.closedAt), y: r.reported, label: `round ${r.round}` }))
  return (
    <ChartCard id='active-nodes' title='Active nodes' testId='nodes-card' description='Nodes given work in each round, and how many of their reports were accepted.'>
      {given.length === 0
        ? <NotYet>Appears when the first round closes.</NotYet>
        : <LineChart
            series={[
              { id: 'nodes', name: 'Given work', className: 'series-nodes', points: given },
              { id: 'reported', name: 'Reported', className: 'series-reported', points: reported, dashed: true }
            ]}
            xKind='time' xTitle='Time (round closed)' yTitle='Nodes' yFormat={(v) => Number.isInteger(v) ? String(v) : ''} valueFormat={(v) => plural(v, 'node')}
            nonNegativeY yDomainInclude={[0]} height={220} testId='nodes-chart' ariaLabel={`Active nodes over ${plural(given.length, 'round')}`}
          />}
    </ChartCard>
  )
}

/** Each lab's running token total, stacked, so the top edge is the run's whole. */
function LabsChart ({ m }: { m: RunMetrics }): ReactNode {
  const xs = m.labRounds.map((r) => time(r.at))
  const layers = m.labs.map((lab, i) => ({
    id: lab.organizationId ?? 'unknown',
    name: lab.name,
    className: `series-lab-${i % 6}`,
    values: cumulative(m.labRounds.map((r) => r.tokens[i] ?? 0)),
    note: `${formatCount(lab.tokens)} tokens`
  }))
  return (
    <ChartCard id='labs-chart' title='Contributions per lab' testId='labs-card' description='Accepted tokens per organization, running totals stacked: the top edge is the whole run.'>
      {xs.length === 0 || layers.length === 0
        ? <NotYet>Appears when the first accepted reports are folded into a round.</NotYet>
        : <StackedAreaChart
            xs={xs} labels={m.labRounds.map((r) => `after round ${r.round}`)} layers={layers}
            xKind='time' xTitle='Time (round closed)' yTitle='Tokens (running total)' yFormat={formatCount}
            height={240} testId='labs-chart' ariaLabel={`Tokens by lab over time: ${layers.map((l) => `${l.name} ${l.note}`).join(', ')}`}
          />}
    </ChartCard>
  )
}

const KIND_LABEL: Record<PledgeKind, string> = { usd: 'Money', gpu_hours: 'GPU-hours', cpu_core_hours: 'CPU core-hours' }

/** Running totals of what was pledged (and, for compute, delivered) against the goal, over time. */
function FundingChart ({ m, createdAt }: { m: RunMetrics, createdAt: string }): ReactNode {
  const delivered = { gpu_hours: m.delivered.map((d) => d.gpuHours), cpu_core_hours: m.delivered.map((d) => d.cpuCoreHours) }
  const kinds = (['usd', 'gpu_hours', 'cpu_core_hours'] as const).filter((k) =>
    k === 'usd' || m.pledges.some((p) => p.kind === k) || delivered[k].some((h) => h > 0) || (k === 'gpu_hours' && m.goals.computeGoalGpuHours !== null))
  const [picked, setKind] = useState<PledgeKind>('usd')
  const kind: PledgeKind = (kinds as readonly PledgeKind[]).includes(picked) ? picked : 'usd'
  const format = kind === 'usd' ? formatUsd : formatHours
  // Pledges can predate the run's creation time only through imports or clock skew; start at the earliest.
  const start = Math.min(time(createdAt), ...m.pledges.map((p) => time(p.at)))
  const now = Date.now()
  const pledges = m.pledges.filter((p) => p.kind === kind)
  const totals = cumulative(pledges.map((p) => p.amount))
  // A running total starts at zero when the run was created and holds until now.
  const pledged: LinePoint[] = [
    { x: start, y: 0, label: 'run created' },
    ...pledges.map((p, i) => ({ x: time(p.at), y: totals[i]!, label: `${format(p.amount)} pledged ${new Date(p.at).toLocaleString()}` })),
    { x: Math.max(now, start), y: totals.at(-1) ?? 0, label: 'now' }
  ]
  const series: LineSeries[] = [{ id: 'pledged', name: 'Pledged', className: 'series-pledged', points: pledged, step: true, note: kind === 'usd' ? formatUsd(totals.at(-1) ?? 0) : `${formatHours(totals.at(-1) ?? 0)} ${UNIT_SHORT[kind]}` }]
  if (kind !== 'usd') {
    const done = cumulative(delivered[kind])
    series.push({
      id: 'delivered',
      name: 'Delivered (all nodes)',
      className: 'series-delivered',
      step: true,
      note: `${formatHours(done.at(-1) ?? 0)} ${UNIT_SHORT[kind]}`,
      points: [{ x: start, y: 0, label: 'run created' }, ...m.delivered.map((d, i) => ({ x: time(d.at), y: done[i]!, label: `after round ${d.round}` }))]
    })
  }
  const goal = kind === 'usd' ? m.goals.fundingGoalUsd : kind === 'gpu_hours' ? m.goals.computeGoalGpuHours : null
  const references: ReferenceLine[] = goal === null ? [] : [{ id: 'goal', name: 'Goal', className: 'series-goal', y: goal, note: kind === 'usd' ? formatUsd(goal) : `${formatHours(goal)} ${UNIT_SHORT[kind]}` }]
  return (
    <ChartCard
      id='funding-chart'
      title='Funding progress'
      testId='funding-card'
      description={kind === 'usd' ? 'Money pledged to this run, running total, against its funding goal.' : `${UNIT_WORDS[kind]} pledged and delivered by every node, running totals${kind === 'gpu_hours' ? ', against the compute goal' : ''}.`}
      actions={kinds.length > 1 ? <Segmented label='Pledge kind' value={kind} onChange={setKind} testId='funding-kind' options={kinds.map((k) => ({ value: k, label: KIND_LABEL[k] }))} /> : undefined}
    >
      {pledges.length === 0 && goal === null && series.length === 1
        ? <NotYet>No {UNIT_WORDS[kind]} pledged yet and no goal set.</NotYet>
        : <LineChart
            series={series} references={references}
            xKind='time' xTitle='Time' yTitle={kind === 'usd' ? 'US dollars' : UNIT_WORDS[kind]} yFormat={kind === 'usd' ? (v) => formatUsd(Math.round(v)) : formatHours}
            nonNegativeY height={240} testId='funding-chart' ariaLabel={`${KIND_LABEL[kind]} pledged over time${goal !== null ? ` against a goal of ${format(goal)}` : ''}`}
          />}
    </ChartCard>
  )
}

/** The run page's activity charts: throughput, active nodes, tokens per lab, funding progress. */
export function RunActivityCharts ({ runId, createdAt }: { runId: string, createdAt: string }): ReactNode {
  const trpc = useTRPC()
  const metrics = useQuery(trpc.metrics.run.queryOptions({ runId }))
  return (
    <section className='section' aria-labelledby='activity-title' data-testid='run-activity'>
      <div className='section-head'>
        <h2 id='activity-title' className='section-title'>Activity</h2>
        <span className='muted small'>per closed round, from the ledger and the pledges</span>
      </div>
      {metrics.isPending && <LoadingRows label='Loading charts…' rows={3} />}
      {metrics.isError && metrics.data === undefined && <ErrorState title='Can’t load the charts' error={metrics.error} onRetry={() => { void metrics.refetch() }} />}
      {metrics.data !== undefined && (
        <div className='activity-grid'>
          <ThroughputChart m={metrics.data} />
          <NodesChart m={metrics.data} />
          <LabsChart m={metrics.data} />
          <FundingChart m={metrics.data} createdAt={createdAt} />
        </div>
      )}
    </section>
  )
}
