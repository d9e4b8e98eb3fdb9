import { useQuery } from '@tanstack/react-query'
import type { ReactNode } from 'react'
import { useTRPC } from '../lib/trpc.ts'
import type { RunSummary } from '../lib/trpc.ts'
import { useNow } from '../lib/time.ts'
import { formatCount } from '../lib/format.ts'
import { Link, navigate } from '../lib/router.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { RunStatusBadge } from '../components/Badge.tsx'
import { EmptyState, ErrorState, LoadingRows, StaleBanner } from '../components/States.tsx'
import { RelativeTime } from '../components/RelativeTime.tsx'
import { ChartIcon, PlusIcon } from '../components/Icons.tsx'
import { useMe, userHasRole } from '../lib/auth.ts'

/** "Round 12 of 200" with a bar when the run has a rounds goal; tokens otherwise. */
function Progress ({ run }: { run: RunSummary }): ReactNode {
  const tokens = `${formatCount(run.tokensSeen)} tokens`
  if (run.roundsGoal !== null && run.roundsGoal > 0) {
    const pct = Math.min(100, (run.round / run.roundsGoal) * 100)
    return (
      <div>
        <div className='num'>Round {run.round.toLocaleString()} of {run.roundsGoal.toLocaleString()}</div>
        <div className='progress' role='progressbar' aria-label='Rounds done' aria-valuemin={0} aria-valuemax={run.roundsGoal} aria-valuenow={run.round}>
          <span style={{ width: `${pct}%` }} />
        </div>
        <div className='muted small'>{tokens}</div>
      </div>
    )
  }
  return (
    <div>
      <div className='num'>Round {run.round.toLocaleString()}</div>
      <div className='muted small'>{run.tokenGoal !== null ? `${tokens} of ${formatCount(run.tokenGoal)}` : tokens}</div>
    </div>
  )
}

function RunsTable ({ runs }: { runs: RunSummary[] }): ReactNode {
  const now = useNow(5_000)
  return (
    <div className='card table-card'>
      <table className='table table-responsive' data-testid='runs-table'>
        <caption className='visually-hidden'>Training runs</caption>
        <thead>
          <tr>
            <th scope='col'>Run</th>
            <th scope='col'>Status</th>
            <th scope='col'>Progress</th>
            <th scope='col'>Validation loss</th>
            <th scope='col'>Created</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.id} data-testid='run-row' data-run-id={run.id} className='row-link' onClick={(e) => { if (!(e.target as HTMLElement).closest('a, button')) navigate(`/runs/${run.id}`) }}>
              <td className='cell-primary' data-label='Run'>
                <Link className='run-name' to={`/runs/${run.id}`} data-testid='run-link'>{run.name}</Link>
                <div className='muted small'>{formatCount(run.paramCount)} parameters</div>
              </td>
              <td data-label='Status'>
                <div>
                  <RunStatusBadge status={run.status} />
                  {run.failureReason !== null && <div className='small danger-text'>{run.failureReason}</div>}
                </div>
              </td>
              <td data-label='Progress'><Progress run={run} /></td>
              <td data-label='Validation loss' className='num'>
                {run.latestValLoss !== null ? run.latestValLoss.toFixed(3) : <span className='muted'>—</span>}
              </td>
              <td data-label='Created' className='nowrap'><RelativeTime iso={run.createdAt} now={now} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

export function RunsPage (): ReactNode {
  const trpc = useTRPC()
  const me = useMe()
  const runs = useQuery({ ...trpc.runs.list.queryOptions(), refetchInterval: 15_000 })
  const list = runs.data
  const organizer = userHasRole(me.data, 'organizer')
  const launch = (
    <Link className='button' to='/runs/new' data-testid='launch-run'><PlusIcon />Launch a run</Link>
  )
  return (
    <>
      <PageHeader
        title='Runs'
        description='Open pretraining runs: models trained together on donated compute, round by round.'
        actions={organizer || me.data === null ? launch : undefined}
      />
      {list === undefined && runs.isPending && <LoadingRows label='Loading runs…' />}
      {list === undefined && runs.isError && (
        <ErrorState title='Can’t load runs' error={runs.error} onRetry={() => { void runs.refetch() }} retrying={runs.isFetching} />
      )}
      {list !== undefined && runs.isError && <StaleBanner error={runs.error} />}
      {list !== undefined && list.length === 0 && (
        <EmptyState icon={<ChartIcon width='28' height='28' />} title='No runs yet' testId='runs-empty'>
          <p>
            A run is a model that enrolled machines train together: the coordinator hands each node a slice of
            the data every round, merges what they learned into the next checkpoint, and records who did what.
          </p>
          <p>
            {organizer
              ? <>Start the first one: <Link to='/runs/new'>launch a run</Link> with a model preset and the demo corpus.</>
              : <>Organizers <Link to='/runs/new'>launch runs</Link> from this page. Meanwhile, labs can enroll machines from the <Link to='/labs'>Labs</Link> page (see <Link to='/nodes'>Nodes</Link>), so compute is ready when the first run starts.</>}
          </p>
        </EmptyState>
      )}
      {list !== undefined && list.length > 0 && <RunsTable runs={list} />}
    </>
  )
}
