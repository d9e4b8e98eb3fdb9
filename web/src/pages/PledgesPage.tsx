import { useQuery } from '@tanstack/react-query'
import type { ReactNode } from 'react'
import { useTRPC } from '../lib/trpc.ts'
import type { RouterOutputs, RunSummary } from '../lib/trpc.ts'
import { useMe, userHasRole } from '../lib/auth.ts'
import { useNow } from '../lib/time.ts'
import { formatCount, formatHours, formatUsd, plural } from '../lib/format.ts'
import { Link } from '../lib/router.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { RunStatusBadge } from '../components/Badge.tsx'
import { EmptyState, ErrorState, LoadingRows, StaleBanner } from '../components/States.tsx'
import { Meter, Stat } from '../components/Stat.tsx'
import { RelativeTime } from '../components/RelativeTime.tsx'
import { signInHref } from '../components/RequireRole.tsx'
import { HandshakeIcon } from '../components/Icons.tsx'
import { UNIT_SHORT, formatPledgeAmount } from '../lib/pledge-units.ts'
import { RunGoalMeters } from '../components/RunGoalMeters.tsx'
import './pledges.css'

type MyPledge = RouterOutputs['pledges']['mine'][number]
type RunGoals = MyPledge['run']

/** One line per run: what this funder pledged to it, and where the run stands against its goals. */
interface RunPledges { runId: string, runName: string, runStatus: string, usd: number, gpuHours: number, cpuCoreHours: number, goals: RunGoals, pledges: MyPledge[] }

function groupByRun (pledges: MyPledge[]): RunPledges[] {
  const runs = new Map<string, RunPledges>()
  for (const p of pledges) {
    const r = runs.get(p.runId) ?? { runId: p.runId, runName: p.runName, runStatus: p.runStatus, usd: 0, gpuHours: 0, cpuCoreHours: 0, goals: p.run, pledges: [] }
    if (p.kind === 'usd') r.usd += p.amount
    else if (p.kind === 'gpu_hours') r.gpuHours += p.amount
    else r.cpuCoreHours += p.amount
    r.pledges.push(p)
    runs.set(p.runId, r)
  }
  return [...runs.values()]
}

/** How much of one compute pledge its organization's machines delivered after it was made. */
function PledgeDelivery ({ pledge }: { pledge: MyPledge }): ReactNode {
  const f = pledge.fulfilment
  if (f === null) return <span className='muted small'>Money: counts toward the run’s funding goal</span>
  const unit = UNIT_SHORT[f.unit]
  return (
    <Meter
      label={`Delivered by ${pledge.organizationName ?? 'your organization'}`}
      value={f.delivered}
      goal={f.pledged}
      format={formatHours}
      unit={unit}
      tone='success'
      testId='pledge-delivered'
      foot={f.fulfilled ? 'Delivered in full' : f.delivered === 0 ? `Nothing yet: only ${unit} from your organization’s machines after this pledge count` : `${Math.round(f.fraction * 100)}% delivered since the pledge`}
    />
  )
}

function MyPledges (): ReactNode {
  const trpc = useTRPC()
  const mine = useQuery({ ...trpc.pledges.mine.queryOptions(), refetchInterval: 15_000 })
  const now = useNow(5_000)
  if (mine.isPending) return <LoadingRows label='Loading your pledges…' />
  if (mine.isError && mine.data === undefined) return <ErrorState title='Can’t load your pledges' error={mine.error} onRetry={() => { void mine.refetch() }} retrying={mine.isFetching} />
  const list = mine.data!
  const byRun = groupByRun(list)
  const count = (kind: MyPledge['kind']): number => list.filter((p) => p.kind === kind).length
  const total = (kind: MyPledge['kind']): number => list.filter((p) => p.kind === kind).reduce((a, p) => a + p.amount, 0)
  const compute = list.filter((p) => p.fulfilment !== null)
  const fulfilled = compute.filter((p) => p.fulfilment!.fulfilled).length
  return (
    <section className='section' aria-labelledby='mine-title' data-testid='my-pledges'>
      {mine.isError && <StaleBanner error={mine.error} />}
      <div className='stats' aria-label='Your pledges in total'>
        <Stat label='Money pledged' value={<span data-testid='my-usd'>{formatUsd(total('usd'))}</span>} hint={plural(count('usd'), 'pledge')} />
        <Stat label='GPU-hours pledged' value={<span data-testid='my-gpu-hours'>{formatHours(total('gpu_hours'))}</span>} hint={plural(count('gpu_hours'), 'pledge')} />
        <Stat label='CPU core-hours pledged' value={<span data-testid='my-cpu-core-hours'>{formatHours(total('cpu_core_hours'))}</span>} hint={plural(count('cpu_core_hours'), 'pledge')} />
        <Stat label='Compute pledges delivered' value={<span data-testid='my-fulfilled'>{fulfilled} of {compute.length}</span>} hint='in full, by your organization’s machines' />
      </div>
      <div className='section-head'>
        <h2 id='mine-title' className='section-title'>Your pledges, by run</h2>
      </div>
      {list.length === 0
        ? (
          <div className='card empty-inline' data-testid='my-pledges-empty'>
            You haven’t pledged yet. Open a run below and use <strong>Pledge to this run</strong> on its page.
          </div>
          )
        : (
          <div className='card table-card'>
            <table className='table table-responsive table-grid' data-testid='my-pledge-runs'>
              <caption className='visually-hidden'>Your pledges, one row per run</caption>
              <thead>
                <tr>
                  <th scope='col'>Run</th>
                  <th scope='col' className='num-col'>Money</th>
                  <th scope='col' className='num-col'>Compute</th>
                  <th scope='col'>The run’s goals</th>
                  <th scope='col'>Your pledges and what each bought</th>
                </tr>
              </thead>
              <tbody>
                {byRun.map((r) => (
                  <tr key={r.runId} data-testid='my-pledge-run' data-run-id={r.runId}>
                    <td className='cell-primary' data-label='Run'>
                      <div className='run-cell'>
                        <Link className='run-name' to={`/runs/${r.runId}`}>{r.runName}</Link>
                        <RunStatusBadge status={r.runStatus} />
                      </div>
                    </td>
                    <td data-label='Money' className='num num-col strong' data-testid='run-usd'>{r.usd > 0 ? formatUsd(r.usd) : <span className='muted'>—</span>}</td>
                    <td data-label='Compute' className='num num-col strong pledge-compute' data-testid='run-gpu-hours'>
                      {r.gpuHours === 0 && r.cpuCoreHours === 0 && <span className='muted'>—</span>}
                      {r.gpuHours > 0 && <div>{formatHours(r.gpuHours)} GPU-h</div>}
                      {r.cpuCoreHours > 0 && <div>{formatHours(r.cpuCoreHours)} CPU core-h</div>}
                    </td>
                    <td data-label='The run’s goals' className='span-2 meter-cell'>
                      <RunGoalMeters goals={r.goals} />
                    </td>
                    <td data-label='Your pledges' className='span-2 meter-cell'>
                      <ul className='plain-list pledge-items'>
                        {r.pledges.map((p) => (
                          <li key={p.id} className='my-pledge' data-testid='my-pledge' data-kind={p.kind} data-amount={p.amount} data-pledge-id={p.id} data-fulfilled={p.fulfilment?.fulfilled ?? undefined}>
                            <div className='pledge-line'>
                              <span><span className='num strong'>{formatPledgeAmount(p.kind, p.amount)}</span><span className='muted small'> · <RelativeTime iso={p.createdAt} now={now} />{p.note !== null ? ` · “${p.note}”` : ''}</span></span>
                              <Link className='small' to={`/pledges/${p.id}`} data-testid='statement-link'>Statement →</Link>
                            </div>
                            <PledgeDelivery pledge={p} />
                          </li>
                        ))}
                      </ul>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          )}
    </section>
  )
}

function RunToBack ({ run }: { run: RunSummary }): ReactNode {
  const trpc = useTRPC()
  const p = useQuery(trpc.pledges.forRun.queryOptions({ runId: run.id }))
  return (
    <article className='card back-run' data-testid='back-run' data-run-id={run.id}>
      <header className='back-run-head'>
        <h3><Link to={`/runs/${run.id}`}>{run.name}</Link></h3>
        <RunStatusBadge status={run.status} />
      </header>
      <p className='muted small'>{formatCount(run.paramCount)} parameters · round {run.round}{run.roundsGoal !== null ? ` of ${run.roundsGoal}` : ''} · {formatCount(run.tokensSeen)} tokens</p>
      {p.data !== undefined && (
        <div className='meters meters-compact'>
          <Meter label='Funding' value={p.data.pledgedUsd} goal={p.data.fundingGoalUsd} format={formatUsd} />
          <Meter label='Compute pledged' value={p.data.pledgedGpuHours} goal={p.data.computeGoalGpuHours} format={formatHours} unit='GPU-h' tone='info' />
        </div>
      )}
      <Link className='button button-secondary button-small' to={`/runs/${run.id}`}>Open run to pledge</Link>
    </article>
  )
}

function RunsToBack (): ReactNode {
  const trpc = useTRPC()
  const runs = useQuery({ ...trpc.runs.list.queryOptions(), refetchInterval: 15_000 })
  const open = (runs.data ?? []).filter((r) => r.status !== 'completed' && r.status !== 'failed')
  return (
    <section className='section' aria-labelledby='back-title'>
      <div className='section-head'>
        <h2 id='back-title' className='section-title'>Runs you can back</h2>
        <span className='muted small'>drafts, running and paused runs</span>
      </div>
      {runs.isPending && <LoadingRows label='Loading runs…' rows={2} />}
      {runs.isError && runs.data === undefined && <ErrorState title='Can’t load runs' error={runs.error} onRetry={() => { void runs.refetch() }} />}
      {runs.data !== undefined && open.length === 0 && (
        <div className='card empty-inline' data-testid='back-empty'>No run is open for pledges right now. Organizers launch runs from the <Link to='/runs'>Runs</Link> page.</div>
      )}
      {open.length > 0 && <div className='back-grid'>{open.map((r) => <RunToBack key={r.id} run={r} />)}</div>}
    </section>
  )
}

export function PledgesPage (): ReactNode {
  const me = useMe()
  const user = me.data
  const isFunder = userHasRole(user, 'funder')
  return (
    <>
      <PageHeader title='Pledges' description='Commitments of money and compute to the runs people want to see trained, checked against what the ledger says was delivered.' />
      {me.isPending && <LoadingRows label='Loading…' rows={2} />}
      {!me.isPending && !isFunder && (
        <EmptyState icon={<HandshakeIcon width='28' height='28' />} title='Back a run with money or compute' testId='pledges-explainer'>
          <p>Funders pledge to the runs they want to see trained. Each run page shows its funding and compute goals, what has been pledged, and how much compute its nodes have actually delivered, straight from the signed ledger. Every pledge gets a statement of what it bought.</p>
          <ul className='bullets'>
            <li><strong>Money (USD)</strong>: a recorded commitment toward the run’s funding goal; no payment is taken here.</li>
            <li><strong>GPU-hours</strong> or <strong>CPU core-hours</strong>: compute your organization’s machines commit to. Only what they deliver to the run after the pledge counts toward it: a GPU machine’s hour is a GPU-hour, a CPU-only machine’s hour is worth its cores in core-hours.</li>
          </ul>
          {user === null || user === undefined
            ? (
              <div className='actions-row'>
                <Link className='button' to={signInHref('/pledges', 'signup', 'funder')} data-testid='pledges-signup'>Create a funder account</Link>
                <Link className='button button-secondary' to={signInHref('/pledges')}>Sign in</Link>
              </div>
              )
            : <p className='muted'>You’re signed in as {user.displayName}, whose account isn’t a funder account; pledging needs one.</p>}
        </EmptyState>
      )}
      {isFunder && <MyPledges />}
      <RunsToBack />
    </>
  )
}
