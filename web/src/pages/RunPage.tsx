import { useEffect, useState } from 'react'
import type { FormEvent, ReactNode } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useTRPC } from '../lib/trpc.ts'
import type { RouterOutputs } from '../lib/trpc.ts'
import { useMe, userHasRole } from '../lib/auth.ts'
import { apiErrorFields, apiErrorMessage } from '../lib/errors.ts'
import { useMediaQuery, useNow } from '../lib/time.ts'
import { formatCount, formatDuration, formatHours, formatLoss, formatThroughput, formatUsd, shortPeerId, capitalize, plural } from '../lib/format.ts'
import { Link } from '../lib/router.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Badge, NodeStatusBadge, RunStatusBadge } from '../components/Badge.tsx'
import { EmptyState, ErrorState, LoadingRows, StaleBanner } from '../components/States.tsx'
import { RelativeTime } from '../components/RelativeTime.tsx'
import { Meter, Stat } from '../components/Stat.tsx'
import { LossChart } from '../components/LossChart.tsx'
import { RunActivityCharts } from './RunActivityCharts.tsx'
import type { ChartSeries } from '../components/LossChart.tsx'
import { Field, FormMessage, Segmented, fieldAria } from '../components/Form.tsx'
import { signInHref } from '../components/RequireRole.tsx'
import { ChartIcon } from '../components/Icons.tsx'
import { RunCheckpoints } from '../components/RunCheckpoints.tsx'
import { UNIT_SHORT, UNIT_WORDS, formatDeviceHours, formatPledgeAmount } from '../lib/pledge-units.ts'
import type { PledgeKind } from '../lib/pledge-units.ts'

type RunDetail = RouterOutputs['runs']['get']
type Round = RunDetail['rounds'][number]
type PledgeSummary = RouterOutputs['pledges']['forRun']

/* ---------- steering ---------- */

type Action = 'start' | 'pause' | 'resume' | 'stop'

const ACTIONS_FOR: Record<string, Action[]> = {
  draft: ['start', 'stop'],
  running: ['pause', 'stop'],
  paused: ['resume', 'stop'],
  completed: [],
  failed: []
}

const ACTION_LABEL: Record<Action, string> = { start: 'Start', pause: 'Pause', resume: 'Resume', stop: 'Stop' }

function SteerControls ({ runId, status }: { runId: string, status: string }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const [confirmStop, setConfirmStop] = useState(false)
  const setStatus = useMutation(trpc.runs.setStatus.mutationOptions({
    onSuccess: async () => { setConfirmStop(false); await queryClient.invalidateQueries({ queryKey: [['runs']] }) }
  }))
  const actions = ACTIONS_FOR[status] ?? []
  if (actions.length === 0) return null
  const act = (action: Action): void => { setStatus.mutate({ id: runId, action }) }
  return (
    <div className='steer' data-testid='steer-controls'>
      {confirmStop
        ? (
          <div className='steer-confirm' role='group' aria-label='Confirm stopping the run'>
            <span className='small'>Stop for good? The run completes with its latest checkpoint.</span>
            <button type='button' className='button button-danger button-small' disabled={setStatus.isPending} onClick={() => { act('stop') }} data-testid='steer-stop-confirm'>Yes, stop</button>
            <button type='button' className='button button-ghost button-small' onClick={() => { setConfirmStop(false) }}>Cancel</button>
          </div>
          )
        : actions.map((action) => (
          <button
            key={action}
            type='button'
            className={action === 'stop' ? 'button button-secondary' : 'button'}
            disabled={setStatus.isPending}
            onClick={() => { if (action === 'stop') setConfirmStop(true); else act(action) }}
            data-testid={`steer-${action}`}
          >
            {setStatus.isPending && setStatus.variables?.action === action ? `${ACTION_LABEL[action]}…` : ACTION_LABEL[action]}
          </button>
        ))}
      {setStatus.isError && <p className='field-error' role='alert'>{apiErrorMessage(setStatus.error)}</p>}
    </div>
  )
}

/* ---------- progress ---------- */

function RunStats ({ run, activeNodes }: { run: RunDetail, activeNodes: number }): ReactNode {
  const s = run.summary
  const openRound = run.rounds.find((r) => r.status === 'open')
  const valPoints = run.checkpoints.filter((c) => c.valLoss !== null)
  const firstVal = valPoints[0]?.valLoss ?? null
  return (
    <div className='stats' aria-label='Progress'>
      <Stat
        label='Round'
        value={<span data-testid='stat-round'>{s.round.toLocaleString()}{s.roundsGoal !== null && <span className='muted'> / {s.roundsGoal.toLocaleString()}</span>}</span>}
        hint={openRound !== undefined ? `round ${openRound.number} open · ${plural(openRound.participants.length, 'node')}` : s.status === 'running' ? 'waiting for nodes' : capitalize(s.status)}
      />
      <Stat label='Tokens trained' value={<span data-testid='stat-tokens'>{formatCount(s.tokensSeen)}</span>} hint={s.tokenGoal !== null ? `of ${formatCount(s.tokenGoal)} target` : 'across all nodes'} />
      <Stat
        label='Validation loss'
        value={<span data-testid='stat-val-loss'>{formatLoss(s.latestValLoss)}</span>}
        hint={firstVal !== null && s.latestValLoss !== null && valPoints.length > 1 ? `from ${formatLoss(firstVal)} at the start` : 'held-out text, lower is better'}
      />
      <Stat label='Nodes training' value={activeNodes.toLocaleString()} hint={`min ${run.spec.minNodes}, max ${run.spec.maxNodes} per round`} />
    </div>
  )
}

function ProgressCard ({ run }: { run: RunDetail }): ReactNode {
  const s = run.summary
  const tokensPerRound = run.spec.recipe.innerSteps * run.spec.recipe.batchSize * run.spec.recipe.seqLen
  return (
    <section className='card section-card' aria-labelledby='progress-title'>
      <h2 id='progress-title' className='section-title'>Progress</h2>
      <div className='meters'>
        {s.roundsGoal !== null && <Meter label='Rounds' value={s.round} goal={s.roundsGoal} format={(n) => n.toLocaleString()} testId='rounds-meter' />}
        <Meter label='Tokens processed' value={s.tokensSeen} goal={s.tokenGoal} format={formatCount} unit='tokens' testId='tokens-meter' />
      </div>
      <p className='muted small'>Each node trains {formatCount(tokensPerRound)} tokens per round ({run.spec.recipe.innerSteps} steps × {run.spec.recipe.batchSize} × {run.spec.recipe.seqLen}).</p>
    </section>
  )
}

/* ---------- loss curve ---------- */

function lossSeries (run: RunDetail, by: 'round' | 'tokens'): ChartSeries[] {
  const rounds = [...run.rounds].sort((a, b) => a.number - b.number)
  let cumulative = 0
  const tokensAfter = new Map<number, number>()
  for (const r of rounds) { cumulative += r.tokens; tokensAfter.set(r.number, cumulative) }
  const train = rounds.filter((r) => r.trainLoss !== null && r.status === 'closed').map((r) => ({
    x: by === 'round' ? r.number : tokensAfter.get(r.number) ?? 0,
    y: r.trainLoss!,
    label: `round ${r.number}, ${formatCount(tokensAfter.get(r.number) ?? 0)} tokens`
  }))
  const val = run.checkpoints.filter((c) => c.valLoss !== null).map((c) => ({
    x: by === 'round' ? c.round : c.tokensSeen,
    y: c.valLoss!,
    label: `checkpoint of round ${c.round}, ${formatCount(c.tokensSeen)} tokens`
  }))
  return [
    { id: 'train', name: 'Training loss', points: train, className: 'series-train' },
    { id: 'val', name: 'Validation loss', points: val, className: 'series-val', dashed: true }
  ]
}

function LossCard ({ run }: { run: RunDetail }): ReactNode {
  const [by, setBy] = useState<'round' | 'tokens'>('round')
  const trpc = useTRPC()
  const baseline = useQuery(trpc.metrics.run.queryOptions({ runId: run.summary.id })).data?.baselineLoss ?? null
  const series = lossSeries(run, by)
  const total = series.reduce((n, s) => n + s.points.length, 0)
  return (
    <section className='card section-card chart-card' aria-labelledby='loss-title' data-testid='loss-card' data-points={total}>
      <header className='section-head'>
        <div>
          <h2 id='loss-title' className='section-title'>Loss</h2>
          <p className='muted small'>Training loss is the nodes’ average over each round; validation loss is measured on held-out text at every checkpoint. The dashed line is the unigram baseline: what guessing from token frequencies alone scores on the same text.</p>
        </div>
        <Segmented label='Horizontal axis' value={by} onChange={setBy} testId='chart-axis-toggle' options={[{ value: 'round', label: 'By round' }, { value: 'tokens', label: 'By tokens' }]} />
      </header>
      {total === 0
        ? (
          <div className='chart-empty' data-testid='chart-empty'>
            <ChartIcon width='28' height='28' />
            <p>{run.summary.status === 'draft' ? 'The curve starts once the run is started and the first round closes.' : 'The first points appear when the first round closes. This updates by itself.'}</p>
          </div>
          )
        : <LossChart series={series} xKind={by} xLabel={by === 'round' ? 'Round' : 'Tokens trained'} yLabel='Loss (nats/token)' baseline={baseline} testId='loss-chart' />}
    </section>
  )
}

/* ---------- rounds ---------- */

const ROUND_TONES = { open: 'info', closed: 'success', abandoned: 'neutral' } as const

function RoundsTimeline ({ rounds }: { rounds: Round[] }): ReactNode {
  const [showAll, setShowAll] = useState(false)
  const now = useNow(1_000)
  const phone = useMediaQuery('(max-width: 760px)')
  const sorted = [...rounds].sort((a, b) => b.number - a.number)
  const shown = showAll ? sorted : sorted.slice(0, phone ? 4 : 12)
  return (
    <section className='section' aria-labelledby='rounds-title'>
      <div className='section-head'>
        <h2 id='rounds-title' className='section-title'>Rounds</h2>
        <span className='muted small'>{plural(rounds.length, 'round')}, newest first</span>
      </div>
      {rounds.length === 0
        ? <div className='card empty-inline' data-testid='rounds-empty'>No rounds yet. A round opens once the run is running and at least its minimum number of nodes is online.</div>
        : (
          <div className='card table-card'>
            <table className='table table-responsive table-grid' data-testid='rounds-table'>
              <caption className='visually-hidden'>Rounds of this run</caption>
              <thead>
                <tr>
                  <th scope='col'>Round</th>
                  <th scope='col'>Participants</th>
                  <th scope='col'>Refused reports</th>
                  <th scope='col' className='num-col'>Tokens</th>
                  <th scope='col' className='num-col'>Train loss</th>
                  <th scope='col' className='num-col'>Val loss</th>
                  <th scope='col'>Duration</th>
                  <th scope='col'>Closed because</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((r) => (
                  <tr key={r.id} data-testid='round-row' data-round={r.number} data-status={r.status}>
                    <td className='cell-primary' data-label='Round'>
                      <div className='round-head'>
                        <span className='strong num'>#{r.number}</span>
                        <Badge tone={ROUND_TONES[r.status as keyof typeof ROUND_TONES] ?? 'neutral'} pulse={r.status === 'open'}>{capitalize(r.status)}</Badge>
                      </div>
                    </td>
                    <td data-label='Participants' className='span-2'>
                      {r.participants.length === 0
                        ? <span className='muted'>none</span>
                        : (
                          <ul className='plain-list participant-list'>
                            {r.participants.map((p) => (
                              <li key={p.nodeId}>
                                <span>{p.name}</span> <span className={`muted small status-${p.status}`}>· {p.status}{p.tokens > 0 ? `, ${formatCount(p.tokens)} tok` : ''}</span>
                              </li>
                            ))}
                          </ul>
                          )}
                    </td>
                    <td data-label='Refused reports' className={r.refusals.length > 0 ? 'span-2' : undefined} data-testid='round-refusals'>
                      {r.refusals.length === 0
                        ? <span className='muted'>none</span>
                        : (
                          <ul className='plain-list refusal-list'>
                            {r.refusals.map((x, i) => <li key={i}><span className='mono small' title={x.peerId}>{shortPeerId(x.peerId)}</span> <span className='danger-inline'>{x.reason}</span></li>)}
                          </ul>
                          )}
                    </td>
                    <td data-label='Tokens' className='num num-col'>{formatCount(r.tokens)}</td>
                    <td data-label='Train loss' className='num num-col'>{formatLoss(r.trainLoss)}</td>
                    <td data-label='Val loss' className='num num-col'>{formatLoss(r.valLoss)}</td>
                    <td data-label='Duration' className='nowrap'>
                      {r.durationSeconds !== null
                        ? formatDuration(r.durationSeconds)
                        : <span className='muted'>open {formatDuration(Math.max(0, (now - new Date(r.openedAt).getTime()) / 1000))}</span>}
                    </td>
                    <td data-label='Closed because'>{r.closeReason ?? <span className='muted'>—</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          )}
      {sorted.length > shown.length && (
        <button type='button' className='button button-ghost show-more' onClick={() => { setShowAll(true) }}>Show all {sorted.length} rounds</button>
      )}
    </section>
  )
}

/* ---------- nodes ---------- */

function RunNodes ({ runId, rounds }: { runId: string, rounds: Round[] }): ReactNode {
  const trpc = useTRPC()
  const contributions = useQuery(trpc.ledger.contributions.queryOptions({ runId }))
  const nodes = useQuery({ ...trpc.nodes.list.queryOptions(), refetchInterval: 10_000 })
  const openRound = rounds.find((r) => r.status === 'open')
  const byId = new Map((nodes.data ?? []).map((n) => [n.id, n]))
  const byPeer = new Map((nodes.data ?? []).map((n) => [n.peerId, n]))
  const rows = (contributions.data?.nodes ?? []).map((c) => ({ ...c, node: (c.nodeId !== null ? byId.get(c.nodeId) : undefined) ?? byPeer.get(c.peerId) }))
  // Nodes working on the open round that have not reported yet still belong here.
  for (const p of openRound?.participants ?? []) {
    if (rows.some((r) => r.nodeId === p.nodeId)) continue
    const node = byId.get(p.nodeId)
    rows.push({ nodeId: p.nodeId, peerId: node?.peerId ?? '', nodeName: p.name, organizationId: node?.organizationId ?? null, organizationName: node?.organizationName ?? '—', kind: (node?.hardware.gpus.length ?? 0) > 0 ? 'gpu' : 'cpu', tokens: 0, computeHours: 0, gpuHours: 0, cpuCoreHours: 0, accepted: 0, refused: 0, node })
  }
  rows.sort((a, b) => b.tokens - a.tokens)
  return (
    <section className='section' aria-labelledby='nodes-title'>
      <div className='section-head'>
        <h2 id='nodes-title' className='section-title'>Nodes on this run</h2>
        <Link className='small' to={`/ledger/${runId}`}>Full ledger →</Link>
      </div>
      {contributions.isError && <ErrorState title='Can’t load contributions' error={contributions.error} onRetry={() => { void contributions.refetch() }} />}
      {contributions.isPending && <LoadingRows label='Loading contributions…' rows={2} />}
      {contributions.data !== undefined && rows.length === 0 && (
        <div className='card empty-inline' data-testid='run-nodes-empty'>
          No node has worked on this run yet. Lab admins enroll machines from the <Link to='/labs'>Labs</Link> page; they join running runs by themselves.
        </div>
      )}
      {rows.length > 0 && (
        <div className='card table-card'>
          <table className='table table-responsive table-grid' data-testid='run-nodes-table'>
            <caption className='visually-hidden'>Nodes that trained this run</caption>
            <thead>
              <tr>
                <th scope='col'>Node</th>
                <th scope='col'>Organization</th>
                <th scope='col'>Status</th>
                <th scope='col' className='num-col'>Tokens</th>
                <th scope='col' className='num-col'>Compute</th>
                <th scope='col' className='num-col'>Throughput</th>
                <th scope='col' className='num-col'>Reports</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.peerId !== '' ? r.peerId : r.nodeId} data-testid='run-node-row' data-peer-id={r.peerId}>
                  <td className='cell-primary' data-label='Node'>
                    <div className='node-name'>{r.node?.name ?? r.nodeName}</div>
                    {r.peerId !== '' && <div className='mono muted small' title={r.peerId}>{shortPeerId(r.peerId)}</div>}
                  </td>
                  <td data-label='Organization'>{r.organizationName}</td>
                  <td data-label='Status'>{r.node !== undefined ? <NodeStatusBadge status={r.node.status} online={r.node.online} revoked={r.node.revoked} /> : <span className='muted'>unknown</span>}</td>
                  <td data-label='Tokens' className='num num-col'>{formatCount(r.tokens)}</td>
                  <td data-label='Compute' className='num num-col' data-testid='node-compute' data-kind={r.kind} title={`${(r.computeHours * 3600).toFixed(1)} compute-seconds`}>{formatDeviceHours(r.kind, r.kind === 'gpu' ? r.gpuHours : r.cpuCoreHours)}</td>
                  <td data-label='Throughput' className='num num-col' data-testid='node-throughput'>{formatThroughput(r.tokens, r.computeHours * 3600)}</td>
                  <td data-label='Reports' className='num num-col'>
                    <span title='accepted'>{r.accepted} ✓</span>{r.refused > 0 && <span className='danger-inline' title='refused'> · {r.refused} ✗</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className='muted small section-foot'>Throughput is tokens per compute-second, from the ledger. A machine that lists a GPU delivers GPU-hours (compute-seconds ÷ 3600); a CPU-only machine delivers CPU core-hours (compute-seconds × its cores ÷ 3600), as each machine describes itself.</p>
    </section>
  )
}

/* ---------- support: pledges ---------- */

function PledgeForm ({ runId }: { runId: string }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const [kind, setKind] = useState<PledgeKind>('usd')
  const [amount, setAmount] = useState('')
  const [note, setNote] = useState('')
  const [error, setError] = useState<string | undefined>()
  const [done, setDone] = useState<string | null>(null)
  const create = useMutation(trpc.pledges.create.mutationOptions())
  const amountHint = kind === 'usd' ? undefined : `Delivered by your organization’s ${kind === 'gpu_hours' ? 'GPU' : 'CPU-only'} machines; only their work after the pledge counts.`
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault()
    setDone(null)
    const value = Number(amount)
    if (amount.trim() === '' || !Number.isFinite(value)) { setError('enter an amount'); return }
    if (value <= 0) { setError('the amount must be more than zero'); return }
    setError(undefined)
    try {
      await create.mutateAsync({ runId, kind, amount: value, ...(note.trim() !== '' ? { note: note.trim() } : {}) })
      setDone(`Thank you: ${kind === 'usd' ? formatUsd(value) : `${formatHours(value)} ${UNIT_WORDS[kind]}`} pledged.`)
      setAmount('')
      setNote('')
      await queryClient.invalidateQueries({ queryKey: [['pledges']] })
    } catch (err) {
      const fields = apiErrorFields(err)
      setError(fields.find((f) => f.field === 'amount')?.message ?? apiErrorMessage(err))
    }
  }
  return (
    <form className='form pledge-form' noValidate onSubmit={(e) => { void submit(e) }} data-testid='pledge-form'>
      <h3 className='subsection-title'>Pledge to this run</h3>
      <Segmented label='Pledge' value={kind} onChange={(k) => { setKind(k); setError(undefined) }} testId='pledge-kind' options={[{ value: 'usd', label: 'Money (USD)' }, { value: 'gpu_hours', label: 'GPU-hours' }, { value: 'cpu_core_hours', label: 'CPU core-hours' }]} />
      <Field id='pledge-amount' label={kind === 'usd' ? 'Amount in US dollars' : UNIT_WORDS[kind]} hint={amountHint} error={error} field='amount'>
        <div className='input-with-suffix'>
          <input id='pledge-amount' className='input num' type='number' min={0} step='any' inputMode='decimal' value={amount} onChange={(e) => { setAmount(e.target.value) }} {...fieldAria('pledge-amount', error, amountHint)} />
          <span className='input-suffix'>{kind === 'usd' ? 'USD' : UNIT_SHORT[kind]}</span>
        </div>
      </Field>
      <Field id='pledge-note' label={<>Note <span className='muted'>(optional, public)</span></>} field='note'>
        <input id='pledge-note' className='input' value={note} maxLength={500} onChange={(e) => { setNote(e.target.value) }} />
      </Field>
      <button type='submit' className='button button-block' disabled={create.isPending} data-testid='pledge-submit'>{create.isPending ? 'Pledging…' : 'Pledge'}</button>
      {done !== null && <FormMessage tone='success' testId='pledge-done'>{done}</FormMessage>}
      <p className='muted small'>A pledge is a recorded commitment; no payment is taken here.</p>
    </form>
  )
}

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

function SupportCard ({ runId, status }: { runId: string, status: string }): ReactNode {
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
              <h3 className='subsection-title'>{plural(p.pledges.length, 'pledge')}</h3>
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

/* ---------- recipe ---------- */

function RecipeCard ({ run }: { run: RunDetail }): ReactNode {
  const spec = run.spec
  const r = spec.recipe
  const model = 'preset' in spec.model ? `${spec.model.preset} preset` : 'custom config'
  const rows: Array<[string, string]> = [
    ['Model', `${model} · ${formatCount(spec.paramCount)} parameters`],
    ['Dataset', spec.dataset.source === 'demo-corpus' ? 'Demo corpus (King James Bible)' : `${plural(spec.dataset.train.length, 'uploaded shard')}`],
    ['Inner steps × batch × seq', `${r.innerSteps} × ${r.batchSize} × ${r.seqLen}`],
    ['Inner AdamW', `lr ${r.innerLr}, warmup ${r.warmupSteps}, wd ${r.weightDecay}, β ${r.beta1}/${r.beta2}, clip ${r.gradClip}`],
    ['Outer Nesterov', `lr ${r.outerLr}, momentum ${r.outerMomentum}`],
    ['Codec', spec.codec],
    ['Stops after', spec.rounds !== undefined ? `${spec.rounds.toLocaleString()} rounds` : `${formatCount(spec.tokenTarget ?? 0)} tokens`],
    ['Nodes per round', `${spec.minNodes} to ${spec.maxNodes}`],
    ['Round deadline', `${spec.roundDeadlineSeconds} s`],
    ['Evaluation', `${spec.evalBatches} held-out batches`],
    ['Seed', String(spec.seed)]
  ]
  return (
    <section className='card section-card section' aria-labelledby='recipe-title'>
      <h2 id='recipe-title' className='section-title'>Recipe</h2>
      <dl className='summary-list'>
        {rows.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}
      </dl>
    </section>
  )
}

/* ---------- page ---------- */

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

  if (!valid || (run.isError && data === undefined && /no run/i.test(run.error.message))) {
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
        actions={access.data?.canSteer === true ? <SteerControls runId={s.id} status={s.status} /> : undefined}
      />
      {run.isError && <StaleBanner error={run.error} />}
      {data.spec.description !== '' && <p className='run-description'>{data.spec.description}</p>}
      {s.status === 'failed' && s.failureReason !== null && <FormMessage tone='danger' testId='run-failed'>This run failed: {s.failureReason}</FormMessage>}
      {s.status === 'draft' && (
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
      <RoundsTimeline rounds={data.rounds} />
      <RunNodes runId={s.id} rounds={data.rounds} />
      <RunCheckpoints runId={s.id} />
      <RecipeCard run={data} />
    </div>
  )
}
