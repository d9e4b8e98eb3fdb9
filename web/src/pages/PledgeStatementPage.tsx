import { useEffect, useState } from 'react'
import type { ReactNode } from 'react'
import { useQuery } from '@tanstack/react-query'
import { useTRPC } from '../lib/trpc.ts'
import type { RouterOutputs } from '../lib/trpc.ts'
import { useMediaQuery } from '../lib/time.ts'
import { formatCount, formatHours, formatLoss, plural, shortPeerId } from '../lib/format.ts'
import { UNIT_SHORT, formatDeviceHours, formatPledgeAmount } from '../lib/pledge-units.ts'
import { Link } from '../lib/router.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Badge, RunStatusBadge } from '../components/Badge.tsx'
import { EmptyState, ErrorState, LoadingRows, StaleBanner } from '../components/States.tsx'
import { Meter, Stat } from '../components/Stat.tsx'
import { RunGoalMeters } from '../components/RunGoalMeters.tsx'
import { DownloadIcon } from '../components/Icons.tsx'
import './pledges.css'

type Statement = RouterOutputs['pledges']['statement']

const CHECKPOINT_TONE = { written: 'success', pending: 'info', 'not kept': 'neutral' } as const

function Delivery ({ s }: { s: Statement }): ReactNode {
  const f = s.pledge.fulfilment
  if (f === null) {
    return (
      <section className='card section-card' aria-labelledby='goals-title' data-testid='statement-goals'>
        <h2 id='goals-title' className='section-title'>The run’s goals</h2>
        <RunGoalMeters goals={s.run} />
      </section>
    )
  }
  const unit = UNIT_SHORT[f.unit]
  const since = s.organizationSincePledge
  return (
    <section className='card section-card statement-delivery' aria-labelledby='delivery-title' data-testid='statement-delivery' data-fulfilled={f.fulfilled}>
      <h2 id='delivery-title' className='section-title'>Delivered on this pledge’s behalf</h2>
      <div className='meters'>
        <Meter
          label={`By ${s.pledge.organizationName ?? 'the pledging organization'}`}
          value={f.delivered}
          goal={f.pledged}
          format={formatHours}
          unit={unit}
          tone='success'
          testId='statement-fulfilment'
          foot={f.fulfilled ? `Delivered in full on ${new Date(f.fulfilledAt!).toLocaleString()}` : `${Math.round(f.fraction * 100)}% delivered so far`}
        />
      </div>
      {since !== null && (
        <p className='muted small' data-testid='statement-org-since'>
          Since the pledge, {s.pledge.organizationName ?? 'the organization'}’s machines delivered {formatHours(since.gpuHours)} GPU-h and {formatHours(since.cpuCoreHours)} CPU core-h to this run in all; only {unit} count toward this pledge, and an hour counts toward one pledge only.
        </p>
      )}
      <h3 className='subsection-title'>The run’s goals</h3>
      <RunGoalMeters goals={s.run} compact />
    </section>
  )
}

function Labs ({ s }: { s: Statement }): ReactNode {
  return (
    <section className='card table-card' aria-labelledby='labs-title'>
      <h2 id='labs-title' className='section-title table-card-title'>Labs</h2>
      <table className='table table-responsive table-grid' data-testid='statement-labs'>
        <caption className='visually-hidden'>Labs whose machines did the work</caption>
        <thead><tr><th scope='col'>Lab</th><th scope='col' className='num-col'>Tokens</th><th scope='col' className='num-col'>GPU-h</th><th scope='col' className='num-col'>CPU core-h</th><th scope='col' className='num-col'>Nodes</th></tr></thead>
        <tbody>
          {s.labs.map((l) => (
            <tr key={l.organizationId ?? l.name} data-testid='statement-lab'>
              <td className='cell-primary strong' data-label='Lab'>{l.name}</td>
              <td className='num num-col' data-label='Tokens'>{formatCount(l.tokens)}</td>
              <td className='num num-col' data-label='GPU-h'>{formatHours(l.gpuHours)}</td>
              <td className='num num-col' data-label='CPU core-h'>{formatHours(l.cpuCoreHours)}</td>
              <td className='num num-col' data-label='Nodes'>{l.nodes}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}

function Nodes ({ s }: { s: Statement }): ReactNode {
  return (
    <section className='card table-card' aria-labelledby='nodes-title'>
      <h2 id='nodes-title' className='section-title table-card-title'>Nodes</h2>
      <table className='table table-responsive table-grid' data-testid='statement-nodes'>
        <caption className='visually-hidden'>Machines whose reports count here</caption>
        <thead><tr><th scope='col'>Node</th><th scope='col'>Device (as it reports itself)</th><th scope='col' className='num-col'>Tokens</th><th scope='col' className='num-col'>Compute</th></tr></thead>
        <tbody>
          {s.nodes.map((n) => (
            <tr key={n.peerId} data-testid='statement-node' data-kind={n.kind}>
              <td className='cell-primary' data-label='Node'>
                <div className='node-name'>{n.name}</div>
                <div className='muted small'>{n.organizationName} · <span className='mono' title={n.peerId}>{shortPeerId(n.peerId)}</span></div>
              </td>
              <td data-label='Device'>{n.device}</td>
              <td className='num num-col' data-label='Tokens'>{formatCount(n.tokens)}</td>
              <td className='num num-col statement-kind' data-label='Compute'>{formatDeviceHours(n.kind, n.hours)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}

function Checkpoints ({ s }: { s: Statement }): ReactNode {
  return (
    <section className='section' aria-labelledby='ckpt-title'>
      <div className='section-head'>
        <h2 id='ckpt-title' className='section-title'>Checkpoints this went into</h2>
        <span className='muted small'>the checkpoint each round produced; every later checkpoint builds on it</span>
      </div>
      <div className='card table-card'>
        <table className='table table-responsive table-grid' data-testid='statement-checkpoints'>
          <caption className='visually-hidden'>Checkpoints built from this pledge’s work</caption>
          <thead><tr><th scope='col'>Round</th><th scope='col'>Checkpoint</th><th scope='col' className='num-col'>Tokens from here</th><th scope='col' className='num-col'>Val loss</th><th scope='col'>State</th></tr></thead>
          <tbody>
            {s.checkpoints.map((c) => (
              <tr key={c.round} data-testid='statement-checkpoint' data-round={c.round} data-state={c.state}>
                <td className='cell-primary strong num' data-label='Round'>Round {c.round}</td>
                <td data-label='Checkpoint' className='span-2'>
                  {c.sha256 === null
                    ? <span className='muted'>written when the round closes</span>
                    : c.state === 'written'
                      ? <a className='statement-sha' href={`/api/checkpoints/${c.sha256}/`} title={c.sha256}>{c.sha256.slice(0, 16)}…</a>
                      : <span className='statement-sha muted' title={c.sha256}>{c.sha256.slice(0, 16)}…</span>}
                </td>
                <td className='num num-col' data-label='Tokens from here'>{formatCount(c.tokens)}</td>
                <td className='num num-col' data-label='Val loss'>{formatLoss(c.valLoss)}</td>
                <td data-label='State'><Badge tone={CHECKPOINT_TONE[c.state]}>{c.state === 'pending' ? 'Round open' : c.state === 'written' ? 'Written' : 'Not kept'}</Badge></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

function Rows ({ s }: { s: Statement }): ReactNode {
  const [showAll, setShowAll] = useState(false)
  const phone = useMediaQuery('(max-width: 760px)')
  const shown = showAll ? s.rows : s.rows.slice(0, phone ? 5 : 20)
  // The API lists the oldest rows of a long statement (STATEMENT_ROWS_LISTED); totals count every row.
  const counted = s.totals.reports
  const listed = s.rows.length < counted ? `; the first ${formatCount(s.rows.length)} are listed here` : ''
  return (
    <section className='section' aria-labelledby='rows-title'>
      <div className='section-head'>
        <h2 id='rows-title' className='section-title'>Ledger rows</h2>
        <span className='muted small'>{plural(counted, 'row')}{listed}; the CSV has them all</span>
      </div>
      <div className='card table-card'>
        <table className='table table-responsive table-grid' data-testid='statement-rows'>
          <caption className='visually-hidden'>The ledger rows counted, oldest first</caption>
          <thead><tr><th scope='col'>Row</th><th scope='col'>Node</th><th scope='col' className='num-col'>Counted</th><th scope='col' className='num-col'>Tokens</th><th scope='col'>When</th></tr></thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.seq} data-testid='statement-row' data-seq={r.seq} data-share={r.share}>
                <td className='cell-primary num' data-label='Row'>#{r.seq} · round {r.round}</td>
                <td data-label='Node'>{r.nodeName} <span className='muted small'>({r.organizationName})</span></td>
                <td className='num num-col statement-kind' data-label='Counted'>{formatDeviceHours(r.kind, r.hours)}{r.share < 1 && <span className='muted small'> ({Math.round(r.share * 100)}% of the row)</span>}</td>
                <td className='num num-col' data-label='Tokens'>{formatCount(r.tokens)}</td>
                <td data-label='When' className='nowrap'>{new Date(r.at).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {s.rows.length > shown.length && <button type='button' className='button button-ghost show-more' onClick={() => { setShowAll(true) }}>Show {s.rows.length < counted ? 'the first' : 'all'} {s.rows.length} rows</button>}
    </section>
  )
}

/** `/pledges/:id`: what one pledge bought, from the ledger, with a CSV of the same rows. */
export function PledgeStatementPage ({ pledgeId }: { pledgeId: string }): ReactNode {
  const trpc = useTRPC()
  const valid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(pledgeId)
  const statement = useQuery({ ...trpc.pledges.statement.queryOptions({ pledgeId }), enabled: valid, refetchInterval: 15_000 })
  const s = statement.data
  const title = s === undefined ? 'Pledge statement' : `${formatPledgeAmount(s.pledge.kind, s.pledge.amount)} to ${s.pledge.runName}`
  useEffect(() => { document.title = `${title} · Barnraise` }, [title])

  if (!valid || (statement.isError && s === undefined && statement.error.data?.code === 'NOT_FOUND')) {
    return (
      <>
        <PageHeader title='Pledge not found' />
        <EmptyState title='There is no pledge at this address' testId='statement-not-found'>
          <p>It may have been a mistyped link. Your pledges, each with its statement, are on the <Link to='/pledges'>Pledges</Link> page.</p>
        </EmptyState>
      </>
    )
  }
  if (s === undefined) {
    return (
      <>
        <PageHeader title='Pledge statement' />
        {statement.isPending && <LoadingRows label='Loading the statement…' rows={5} />}
        {statement.isError && <ErrorState title='Can’t load this statement' error={statement.error} onRetry={() => { void statement.refetch() }} retrying={statement.isFetching} />}
      </>
    )
  }
  const p = s.pledge
  return (
    <div data-testid='statement-page' data-pledge-id={p.id} data-kind={p.kind}>
      <nav className='crumbs' aria-label='Breadcrumb'><Link to='/pledges'>Pledges</Link> <span aria-hidden='true'>/</span> <span>Statement</span></nav>
      <PageHeader
        title={`Statement: ${title}`}
        description={
          <span className='run-meta'>
            <RunStatusBadge status={p.runStatus} />
            <span>pledged by {p.by}{p.organizationName !== null ? ` (${p.organizationName})` : ''} on {new Date(p.createdAt).toLocaleString()}</span>
            <Link to={`/runs/${p.runId}`}>Open the run</Link>
          </span>
        }
        actions={<a className='button button-secondary' href={`/api/pledges/${p.id}/statement.csv`} download data-testid='statement-csv'><DownloadIcon />Download CSV</a>}
      />
      {statement.isError && <StaleBanner error={statement.error} />}
      {p.note !== null && <p className='run-description'>“{p.note}”</p>}
      <p className='muted statement-rule' data-testid='statement-rule'><strong>What counts:</strong> {s.rule} Each machine’s kind and core count are its own claims, as are the compute-seconds in its signed reports.</p>
      <div className='stats' aria-label={s.scope === 'compute' ? 'What this pledge bought' : 'What the run trained since this pledge'}>
        <Stat label='Tokens trained' value={<span data-testid='statement-tokens'>{formatCount(s.totals.tokens)}</span>} hint={s.scope === 'compute' ? 'on this pledge’s behalf' : 'by the whole run since the pledge'} />
        <Stat label='GPU-hours' value={<span data-testid='statement-gpu-hours'>{formatHours(s.totals.gpuHours)}</span>} hint='GPU machines’ wall-clock hours' />
        <Stat label='CPU core-hours' value={<span data-testid='statement-cpu-core-hours'>{formatHours(s.totals.cpuCoreHours)}</span>} hint='CPU-only machines: hours × cores' />
        <Stat label='Reports' value={s.totals.reports.toLocaleString()} hint={`${plural(s.nodes.length, 'node')}, ${plural(s.labs.length, 'lab')}`} />
      </div>
      <div className='statement-grid'>
        <Delivery s={s} />
        {s.rows.length === 0
          ? (
            <div className='card empty-inline' data-testid='statement-empty'>
              {s.scope === 'compute'
                ? `Nothing yet: the statement fills as ${p.organizationName ?? 'the organization'}’s ${p.kind === 'gpu_hours' ? 'GPU' : 'CPU-only'} machines report accepted work to this run.`
                : 'Nothing yet: the statement fills as the run trains.'}
            </div>
            )
          : <Labs s={s} />}
      </div>
      {s.rows.length > 0 && (
        <>
          <div className='section'><Nodes s={s} /></div>
          <Checkpoints s={s} />
          <Rows s={s} />
        </>
      )}
    </div>
  )
}
