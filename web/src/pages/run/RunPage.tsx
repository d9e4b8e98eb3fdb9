import { useEffect } from 'react'
import type { ReactNode } from 'react'
import { useQuery } from '@tanstack/react-query'
import { useTRPC } from '../../lib/trpc.ts'
import { apiErrorCode } from '../../lib/errors.ts'
import { useNow } from '../../lib/time.ts'
import { formatCount } from '../../lib/format.ts'
import { Link } from '../../lib/router.tsx'
import { PageHeader } from '../../components/PageHeader.tsx'
import { RunStatusBadge } from '../../components/Badge.tsx'
import { EmptyState, ErrorState, LoadingRows, StaleBanner } from '../../components/States.tsx'
import { RelativeTime } from '../../components/RelativeTime.tsx'
import { FormMessage } from '../../components/Form.tsx'
import { RunCheckpoints } from '../../components/RunCheckpoints.tsx'
import { RunActivityCharts } from './RunActivityCharts.tsx'
import { SteerControls } from './SteerControls.tsx'
import { ProgressCard, RunStats } from './RunProgress.tsx'
import { AwaitingDataset } from './AwaitingDataset.tsx'
import { LossCard } from './LossCard.tsx'
import { RoundsTimeline } from './RoundsTimeline.tsx'
import { RunNodes } from './RunNodes.tsx'
import { SupportCard } from './SupportCard.tsx'
import { RecipeCard } from './RecipeCard.tsx'

/** One run: status and controls, progress, loss, support, activity, rounds, nodes, checkpoints and recipe. */

export function RunPage ({ runId }: { runId: string }): ReactNode {
  const trpc = useTRPC()
  const valid = /^[0-9a-f-]{36}$/i.test(runId)
  const run = useQuery({ ...trpc.runs.get.queryOptions({ id: runId }), enabled: valid, refetchInterval: 15_000 })
  const access = useQuery({ ...trpc.runs.access.queryOptions({ id: runId }), enabled: valid })
  const now = useNow(5_000)
  const data = run.data
  const name = data?.summary.name
  useEffect(() => {
    if (name !== undefined) document.title = `${name} · Barnraise`
  }, [name])

  if (!valid || (run.isError && data === undefined && apiErrorCode(run.error) === 'NOT_FOUND')) {
    return (
      <>
        <PageHeader title='Run not found' />
        <EmptyState title='There is no run at this address' testId='run-not-found'>
          <p>It may have been a mistyped link. See all <Link to='/runs'>runs</Link>.</p>
        </EmptyState>
      </>
    )
  }
  if (data === undefined) {
    return (
      <>
        <PageHeader title='Run' />
        {run.isPending && <LoadingRows label='Loading the run…' rows={5} />}
        {run.isError && <ErrorState title='Can’t load this run' error={run.error} onRetry={() => { void run.refetch() }} retrying={run.isFetching} />}
      </>
    )
  }

  const s = data.summary
  const openRound = data.rounds.find((r) => r.status === 'open')
  const activeNodes = openRound?.participants.length ?? 0
  return (
    <div data-testid='run-page' data-run-id={s.id} data-status={s.status}>
      <nav className='crumbs' aria-label='Breadcrumb'><Link to='/runs'>Runs</Link> <span aria-hidden='true'>/</span> <span>{s.name}</span></nav>
      <PageHeader
        title={s.name}
        description={
          <span className='run-meta'>
            <RunStatusBadge status={s.status} />
            <span>{formatCount(s.paramCount)} parameters</span>
            <span>created <RelativeTime iso={s.createdAt} now={now} />{access.data?.createdBy !== null && access.data?.createdBy !== undefined ? ` by ${access.data.createdBy}` : ''}</span>
          </span>
        }
        actions={access.data !== undefined && access.data.actions.length > 0 ? <SteerControls runId={s.id} actions={access.data.actions} /> : undefined}
      />
      {run.isError && <StaleBanner error={run.error} />}
      {data.spec.description !== '' && <p className='run-description'>{data.spec.description}</p>}
      {s.status === 'failed' && s.failureReason !== null && <FormMessage tone='danger' testId='run-failed'>This run failed: {s.failureReason}</FormMessage>}
      {data.awaiting !== null && <AwaitingDataset awaiting={data.awaiting} canSteer={access.data?.canSteer === true} />}
      {s.status === 'draft' && data.awaiting === null && (
        <FormMessage tone='info' testId='run-draft'>
          This run is a draft: nothing trains until {access.data?.canSteer === true ? 'you start it' : 'its organizer starts it'}.
        </FormMessage>
      )}
      {s.status === 'paused' && (
        <FormMessage tone='info' testId='run-paused'>
          This run is paused: nodes get no new work until {access.data?.canSteer === true ? 'you resume it' : 'its organizer resumes it'}.
        </FormMessage>
      )}
      <RunStats run={data} activeNodes={s.status === 'running' ? activeNodes : 0} />
      <div className='run-grid'>
        <div className='run-grid-main'>
          <LossCard run={data} />
          <ProgressCard run={data} />
        </div>
        <div className='run-grid-aside'>
          <SupportCard runId={s.id} status={s.status} />
        </div>
      </div>
      <RunActivityCharts runId={s.id} createdAt={s.createdAt} />
      <RoundsTimeline rounds={data.rounds} omitted={data.roundsOmitted} />
      <RunNodes runId={s.id} rounds={data.rounds} />
      <RunCheckpoints runId={s.id} />
      <RecipeCard run={data} runId={runId} />
    </div>
  )
}
