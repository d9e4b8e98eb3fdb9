import type { ReactNode } from 'react'
import { useQuery } from '@tanstack/react-query'
import { useTRPC } from '../../lib/trpc.ts'
import { useMe, userHasRole } from '../../lib/auth.ts'
import { apiErrorMessage } from '../../lib/errors.ts'
import { useNow } from '../../lib/time.ts'
import { formatHours, formatUsd, plural } from '../../lib/format.ts'
import { Link } from '../../lib/router.tsx'
import { LoadingRows } from '../../components/States.tsx'
import { RelativeTime } from '../../components/RelativeTime.tsx'
import { Meter } from '../../components/Stat.tsx'
import { signInHref } from '../../components/RequireRole.tsx'
import { formatPledgeAmount } from '../../lib/pledge-units.ts'
import { PledgeForm } from './PledgeForm.tsx'
import type { PledgeSummary } from './run-types.ts'

/** What a visitor can do about pledging: sign in, switch to a funder account, or pledge. */
function PledgeCall ({ runId, status }: { runId: string, status: string }): ReactNode {
  const me = useMe()
  if (status === 'completed' || status === 'failed') return <p className='muted small pledge-call' data-testid='pledges-closed'>This run is {status}; it no longer takes pledges.</p>
  if (me.data === null || me.data === undefined) {
    return (
      <div className='pledge-call' data-testid='pledge-signin'>
        <p className='small'>Funders can pledge money or compute to this run.</p>
        <Link className='button button-secondary button-block' to={signInHref(`/runs/${runId}`)}>Sign in to pledge</Link>
      </div>
    )
  }
  if (!userHasRole(me.data, 'funder')) return <p className='muted small pledge-call' data-testid='pledge-role'>Pledges come from funder accounts; yours is set up for other work.</p>
  return <PledgeForm runId={runId} />
}

/** Funding and compute pledged and delivered against the run's goals, and its pledges. */
export function SupportCard ({ runId, status }: { runId: string, status: string }): ReactNode {
  const trpc = useTRPC()
  const pledges = useQuery(trpc.pledges.forRun.queryOptions({ runId }))
  const now = useNow(5_000)
  const p: PledgeSummary | undefined = pledges.data
  return (
    <section className='card section-card support-card' aria-labelledby='support-title' data-testid='support-card'>
      <h2 id='support-title' className='section-title'>Support</h2>
      {pledges.isPending && <LoadingRows label='Loading pledges…' rows={2} />}
      {pledges.isError && <p className='field-error'>{apiErrorMessage(pledges.error)}</p>}
      {p !== undefined && (
        <>
          <div className='meters'>
            <Meter label='Funding pledged' value={p.pledgedUsd} goal={p.fundingGoalUsd} format={formatUsd} testId='funding-meter' />
            <Meter label='Compute pledged' value={p.pledgedGpuHours} goal={p.computeGoalGpuHours} format={formatHours} unit='GPU-h' testId='compute-pledged-meter' tone='info' />
            {p.pledgedCpuCoreHours > 0 && <Meter label='CPU compute pledged' value={p.pledgedCpuCoreHours} goal={null} format={formatHours} unit='CPU core-h' testId='cpu-pledged-meter' tone='info' foot='CPU-only machines’ time; the compute goal counts GPU-hours' />}
            <Meter label='GPU compute delivered (ledger)' value={p.deliveredGpuHours} goal={p.computeGoalGpuHours} format={formatHours} unit='GPU-h' testId='compute-delivered-meter' tone='success' foot={p.deliveredCpuCoreHours > 0 ? `plus ${formatHours(p.deliveredCpuCoreHours)} CPU core-h from CPU-only machines` : undefined} />
          </div>
          <PledgeCall runId={runId} status={status} />
          {p.pledges.length > 0 && (
            <div className='pledge-list'>
              <h3 className='subsection-title'>{plural(p.pledgeCount, 'pledge')}</h3>
              <ul className='plain-list' data-testid='run-pledges'>
                {p.pledges.slice(0, 8).map((x) => (
                  <li key={x.id} data-testid='run-pledge' data-kind={x.kind} data-amount={x.amount}>
                    <div className='pledge-line'>
                      <strong className='num'>{formatPledgeAmount(x.kind, x.amount)}</strong>
                      <span className='muted small'>{x.by} · <RelativeTime iso={x.createdAt} now={now} /> · <Link to={`/pledges/${x.id}`}>statement</Link></span>
                    </div>
                    {x.note !== null && <div className='small muted pledge-note'>“{x.note}”</div>}
                  </li>
                ))}
              </ul>
            </div>
          )}
        </>
      )}
    </section>
  )
}
