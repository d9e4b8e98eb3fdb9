import { useCallback, useMemo, useState } from 'react'
import type { ReactNode } from 'react'
import { useQuery, useQueryClient } from '@tanstack/react-query'
import type { LedgerEntry, LedgerVerdict } from '@barnraise/protocol/ledger-chain'
import { useTRPC, useTRPCClient } from '../lib/trpc.ts'
import type { RouterOutputs, RunSummary } from '../lib/trpc.ts'
import { useNow } from '../lib/time.ts'
import { readLedgerAfter, withNewLedgerRows } from '../lib/ledger-pages.ts'
import { formatCount, formatHours, formatScore, plural, shortHash, shortPeerId } from '../lib/format.ts'
import { formatDeviceHours } from '../lib/pledge-units.ts'
import { Link, navigate } from '../lib/router.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Badge, RunStatusBadge } from '../components/Badge.tsx'
import { EmptyState, ErrorState, LoadingRows, StaleBanner } from '../components/States.tsx'
import { RelativeTime } from '../components/RelativeTime.tsx'
import { Stat } from '../components/Stat.tsx'
import { Segmented } from '../components/Form.tsx'
import { DownloadIcon, LedgerIcon, ShieldIcon } from '../components/Icons.tsx'
import { SortableTable } from '../components/SortableTable.tsx'
import type { SortColumn } from '../lib/sort-rows.ts'

type Contributions = RouterOutputs['ledger']['contributions']
type OrgRow = Contributions['organizations'][number]
type NodeRow = Contributions['nodes'][number]

const ORG_COLUMNS: Array<SortColumn<OrgRow>> = [
  { key: 'organizationName', label: 'Organization', value: (r) => r.organizationName, render: (r) => <span className='strong'>{r.organizationName}</span> },
  { key: 'nodes', label: 'Nodes', value: (r) => r.nodes, numeric: true },
  { key: 'tokens', label: 'Tokens', value: (r) => r.tokens, render: (r) => formatCount(r.tokens), numeric: true },
  { key: 'gpuHours', label: 'GPU-hours', value: (r) => r.gpuHours, render: (r) => formatHours(r.gpuHours), numeric: true },
  { key: 'cpuCoreHours', label: 'CPU core-hours', value: (r) => r.cpuCoreHours, render: (r) => formatHours(r.cpuCoreHours), numeric: true },
  { key: 'accepted', label: 'Accepted', value: (r) => r.accepted, numeric: true },
  { key: 'refused', label: 'Refused', value: (r) => r.refused, render: (r) => r.refused > 0 ? <span className='danger-inline'>{r.refused}</span> : '0', numeric: true }
]

const NODE_COLUMNS: Array<SortColumn<NodeRow>> = [
  { key: 'nodeName', label: 'Node', value: (r) => r.nodeName, render: (r) => <div><div className='node-name'>{r.nodeName}</div><div className='mono muted small' title={r.peerId}>{shortPeerId(r.peerId)}</div></div> },
  { key: 'organizationName', label: 'Organization', value: (r) => r.organizationName },
  { key: 'tokens', label: 'Tokens', value: (r) => r.tokens, render: (r) => formatCount(r.tokens), numeric: true },
  { key: 'computeHours', label: 'Compute', value: (r) => r.kind === 'gpu' ? r.gpuHours : r.cpuCoreHours, render: (r) => formatDeviceHours(r.kind, r.kind === 'gpu' ? r.gpuHours : r.cpuCoreHours), numeric: true },
  { key: 'accepted', label: 'Accepted', value: (r) => r.accepted, numeric: true },
  { key: 'refused', label: 'Refused', value: (r) => r.refused, render: (r) => r.refused > 0 ? <span className='danger-inline'>{r.refused}</span> : '0', numeric: true }
]

/* ---------- verification ---------- */

type VerifyState = { state: 'idle' } | { state: 'running' } | { state: 'done', verdict: LedgerVerdict, at: number } | { state: 'error', message: string }

function VerifyResult ({ result }: { result: VerifyState }): ReactNode {
  if (result.state === 'idle' || result.state === 'running') return null
  if (result.state === 'error') {
    return <div className='banner banner-danger' role='alert' data-testid='verify-result' data-ok='false'>Could not verify: {result.message}</div>
  }
  const v = result.verdict
  if (v.ok) {
    return (
      <div className='banner banner-success' role='status' data-testid='verify-result' data-ok='true'>
        <ShieldIcon width='18' height='18' />
        <span><strong>{plural(v.rows, 'row')} verified</strong> in this browser: every hash chains back to the run’s genesis and every accepted report carries a valid signature by its node.</span>
      </div>
    )
  }
  return (
    <div className='banner banner-danger' role='alert' data-testid='verify-result' data-ok='false' data-seq={v.seq}>
      <span><strong>Verification failed at entry #{v.index + 1}</strong> of {v.rows} (ledger seq {v.seq}): {v.reason}. Rows before it check out; do not trust this ledger from that row on.</span>
    </div>
  )
}

/* ---------- raw rows ---------- */

const PAGE_SIZE = 50

function EntriesTable ({ entries, badSeq, filter, nodeNames }: { entries: readonly LedgerEntry[], badSeq: number | null, filter: string, nodeNames: ReadonlyMap<string, string> }): ReactNode {
  const now = useNow(5_000)
  // Entry numbers count within the run (1, 2, 3 …); the install-wide seq stays on hover and in exports.
  const position = new Map(entries.map((e, i) => [e.seq, i + 1]))
  const nameOf = (peerId: string): string => nodeNames.get(peerId) ?? shortPeerId(peerId)
  const [page, setPage] = useState(0)
  const [outcome, setOutcome] = useState<'all' | 'accepted' | 'refused'>('all')
  const needle = filter.trim().toLowerCase()
  const rows = entries.filter((e) => (outcome === 'all' || e.outcome === outcome) &&
    (needle === '' || [e.peerId, nodeNames.get(e.peerId) ?? '', e.nodeId ?? '', e.reason ?? '', e.hash, String(e.round), String(position.get(e.seq))].some((v) => v.toLowerCase().includes(needle))))
  const newestFirst = [...rows].reverse()
  const pages = Math.max(1, Math.ceil(newestFirst.length / PAGE_SIZE))
  const current = Math.min(page, pages - 1)
  const shown = newestFirst.slice(current * PAGE_SIZE, (current + 1) * PAGE_SIZE)
  return (
    <section className='section' aria-labelledby='entries-title'>
      <div className='section-head'>
        <h2 id='entries-title' className='section-title'>Entries</h2>
        <Segmented label='Outcome' value={outcome} onChange={(v) => { setOutcome(v); setPage(0) }} options={[{ value: 'all', label: 'All' }, { value: 'accepted', label: 'Accepted' }, { value: 'refused', label: 'Refused' }]} />
      </div>
      {rows.length === 0
        ? <div className='card empty-inline' data-testid='entries-empty'>{entries.length === 0 ? 'No entries yet: the ledger gains a row for every report a node makes.' : 'No entries match.'}</div>
        : (
          <div className='card table-card'>
            <table className='table table-responsive table-compact table-grid' data-testid='ledger-entries'>
              <caption className='visually-hidden'>Ledger entries, newest first</caption>
              <thead>
                <tr>
                  <th scope='col'>Entry</th><th scope='col' className='num-col'>Round</th><th scope='col'>Node</th><th scope='col'>Outcome</th>
                  <th scope='col' className='num-col'>Tokens</th><th scope='col' className='num-col'>Compute</th><th scope='col' className='num-col' title='Loss the report removed on held-out data, as the coordinator measured it'>Score</th><th scope='col'>Hash</th><th scope='col'>Recorded</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((e) => (
                  <tr key={e.seq} data-testid='ledger-row' data-seq={e.seq} className={badSeq === e.seq ? 'row-bad' : undefined}>
                    <td className='cell-primary num' data-label='Entry'><span className='strong' title={`ledger seq ${e.seq}`} data-testid='entry-number'>#{position.get(e.seq)}</span>{badSeq === e.seq && <Badge tone='danger'>fails verification</Badge>}</td>
                    <td data-label='Round' className='num num-col'>{e.round}</td>
                    <td data-label='Node'><span className='node-name' title={`peer ${e.peerId}`} data-testid='entry-node'>{nameOf(e.peerId)}</span></td>
                    <td data-label='Outcome'>
                      <div>
                        <Badge tone={e.outcome === 'accepted' ? 'success' : 'danger'}>{e.outcome === 'accepted' ? 'Accepted' : 'Refused'}</Badge>
                        {e.reason !== null && <div className='small muted'>{e.reason}</div>}
                      </div>
                    </td>
                    <td data-label='Tokens' className='num num-col'>{formatCount(e.tokens)}</td>
                    <td data-label='Compute' className='num num-col'>{e.computeSeconds.toFixed(1)} s</td>
                    <td data-label='Score' className='num num-col' data-testid='entry-score'>{formatScore(e.score)}</td>
                    <td data-label='Hash'><span className='mono small' title={`hash ${e.hash}\nprev ${e.prevHash}`}>{shortHash(e.hash)}</span></td>
                    <td data-label='Recorded' className='nowrap'>{e.createdAt !== undefined ? <RelativeTime iso={e.createdAt} now={now} /> : '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          )}
      {pages > 1 && (
        <div className='pager'>
          <button type='button' className='button button-ghost button-small' disabled={current === 0} onClick={() => { setPage(current - 1) }}>← Newer</button>
          <span className='muted small'>Page {current + 1} of {pages} · {plural(rows.length, 'row')}</span>
          <button type='button' className='button button-ghost button-small' disabled={current >= pages - 1} onClick={() => { setPage(current + 1) }}>Older →</button>
        </div>
      )}
    </section>
  )
}

/* ---------- pages ---------- */

function RunPicker ({ runs, current }: { runs: RunSummary[], current?: string }): ReactNode {
  return (
    <label className='run-picker'>
      <span className='field-label'>Run</span>
      <select className='input' value={current ?? ''} onChange={(e) => { if (e.target.value !== '') navigate(`/ledger/${e.target.value}`) }} data-testid='ledger-run-picker'>
        {current === undefined && <option value=''>Choose a run…</option>}
        {runs.map((r) => <option key={r.id} value={r.id}>{r.name} ({r.status})</option>)}
      </select>
    </label>
  )
}

function RunLedger ({ runId, runs }: { runId: string, runs: RunSummary[] }): ReactNode {
  const trpc = useTRPC()
  const client = useTRPCClient()
  const queryClient = useQueryClient()
  const contributions = useQuery({ ...trpc.ledger.contributions.queryOptions({ runId }), refetchInterval: 20_000 })
  // Under ledger.entries' key, so a ledger change the live feed announces refreshes it too.
  const entriesKey = useMemo(() => [...trpc.ledger.entries.queryKey({ runId }), 'every page'] as const, [trpc, runId])
  const fetchPage = useCallback(async (afterSeq: number) => await client.ledger.entries.query({ runId, afterSeq }), [client, runId])
  const entries = useQuery({
    queryKey: entriesKey,
    // Every page once, then on each refresh only the rows after the last one held: a long run's
    // ledger was fetched whole every 20 s by every viewer.
    queryFn: async () => await withNewLedgerRows<LedgerEntry>(queryClient.getQueryData<readonly LedgerEntry[]>(entriesKey) ?? [], fetchPage),
    refetchInterval: 20_000,
    // Rows never change once written; comparing every row on each refresh would cost more than the fetch.
    structuralSharing: false
  })
  const [filter, setFilter] = useState('')
  const [view, setView] = useState<'organizations' | 'nodes'>('organizations')
  const [verify, setVerify] = useState<VerifyState>({ state: 'idle' })
  const run = runs.find((r) => r.id === runId)

  const needle = filter.trim().toLowerCase()
  const orgs = useMemo(() => (contributions.data?.organizations ?? []).filter((o) => needle === '' || o.organizationName.toLowerCase().includes(needle)), [contributions.data, needle])
  const nodeNames = useMemo(() => new Map((contributions.data?.nodes ?? []).map((n) => [n.peerId, n.nodeName])), [contributions.data])
  const nodes = useMemo(() => (contributions.data?.nodes ?? []).filter((n) => needle === '' || [n.nodeName, n.peerId, n.organizationName].some((v) => v.toLowerCase().includes(needle))), [contributions.data, needle])

  const runVerify = async (): Promise<void> => {
    setVerify({ state: 'running' })
    try {
      // Verify exactly what the server has now, every page of it afresh, not what the page
      // fetched a while ago: a row rewritten since would otherwise go unseen.
      const fresh = await readLedgerAfter<LedgerEntry>(fetchPage)
      // Loaded on demand: the verifier brings WebCrypto Ed25519 and peer-id parsing with it.
      const { verifyLedger } = await import('@barnraise/protocol/ledger-chain')
      const verdict = await verifyLedger(runId, fresh)
      // The table shows the rows just verified, so a failing row is marked where it is listed.
      queryClient.setQueryData(entriesKey, fresh)
      setVerify({ state: 'done', verdict, at: Date.now() })
    } catch (err) {
      setVerify({ state: 'error', message: err instanceof Error ? err.message : String(err) })
    }
  }

  if (run === undefined) {
    return <EmptyState title='There is no run with this id' testId='ledger-run-missing'><p>Choose one of the runs above, or see all <Link to='/runs'>runs</Link>.</p></EmptyState>
  }
  const totals = contributions.data?.nodes.reduce((t, n) => ({ tokens: t.tokens + n.tokens, gpuHours: t.gpuHours + n.gpuHours, cpuCoreHours: t.cpuCoreHours + n.cpuCoreHours, accepted: t.accepted + n.accepted, refused: t.refused + n.refused }), { tokens: 0, gpuHours: 0, cpuCoreHours: 0, accepted: 0, refused: 0 })
  const badSeq = verify.state === 'done' && !verify.verdict.ok ? verify.verdict.seq : null
  const list: readonly LedgerEntry[] = entries.data ?? []

  return (
    <div data-testid='run-ledger' data-run-id={runId}>
      <div className='ledger-toolbar card'>
        <div className='ledger-run'>
          <div className='ledger-run-title'><Link to={`/runs/${runId}`} className='strong'>{run.name}</Link> <RunStatusBadge status={run.status} /></div>
          <div className='muted small'>{plural(list.length, 'entry', 'entries')} · hash-chained, each accepted report signed by its node</div>
        </div>
        <div className='ledger-actions'>
          <a className='button button-secondary button-small' href={`/api/runs/${runId}/ledger.csv`} download data-testid='export-csv'><DownloadIcon />CSV</a>
          <a className='button button-secondary button-small' href={`/api/runs/${runId}/ledger.json`} download data-testid='export-json'><DownloadIcon />JSON</a>
          <button type='button' className='button button-small' onClick={() => { void runVerify() }} disabled={verify.state === 'running' || entries.isPending} data-testid='verify-ledger'>
            <ShieldIcon width='16' height='16' />{verify.state === 'running' ? 'Verifying…' : 'Verify in this browser'}
          </button>
        </div>
      </div>
      <VerifyResult result={verify} />
      {(contributions.isError || entries.isError) && (contributions.data !== undefined || entries.data !== undefined) && <StaleBanner error={contributions.error ?? entries.error} />}
      {contributions.isError && contributions.data === undefined && <ErrorState title='Can’t load contributions' error={contributions.error} onRetry={() => { void contributions.refetch() }} />}
      {contributions.isPending && <LoadingRows label='Loading contributions…' />}
      {totals !== undefined && (
        <div className='stats' aria-label='Totals for this run'>
          <Stat label='Tokens' value={<span data-testid='ledger-total-tokens'>{formatCount(totals.tokens)}</span>} hint='in accepted and refused reports' />
          <Stat label='Compute' value={<span data-testid='ledger-total-compute'>{formatHours(totals.gpuHours)} <span className='muted small'>GPU-h</span></span>} hint={`plus ${formatHours(totals.cpuCoreHours)} CPU core-h from CPU-only machines`} />
          <Stat label='Accepted reports' value={totals.accepted.toLocaleString()} hint={plural(contributions.data!.nodes.length, 'node')} />
          <Stat label='Refused reports' value={totals.refused.toLocaleString()} hint='stale, malformed or out of bounds' />
        </div>
      )}
      {contributions.data !== undefined && (
        <section className='section' aria-labelledby='contrib-title'>
          <div className='section-head section-head-wrap'>
            <h2 id='contrib-title' className='section-title'>Contributions</h2>
            <div className='toolbar-controls'>
              <Segmented label='Group by' value={view} onChange={setView} testId='contrib-view' options={[{ value: 'organizations', label: 'By organization' }, { value: 'nodes', label: 'By node' }]} />
              <input className='input input-search' type='search' placeholder='Filter by name, peer id, reason…' aria-label='Filter' value={filter} onChange={(e) => { setFilter(e.target.value) }} data-testid='ledger-filter' />
            </div>
          </div>
          {contributions.data.nodes.length === 0
            ? <div className='card empty-inline' data-testid='contrib-empty'>No contributions yet. They appear as soon as a node reports its first round.</div>
            : view === 'organizations'
              ? (orgs.length === 0
                  ? <div className='card empty-inline'>No organization matches “{filter}”.</div>
                  : <SortableTable rows={orgs} columns={ORG_COLUMNS} initialSort='tokens' caption='Contributions by organization' testId='contrib-orgs' rowTestId='contrib-org-row' rowKey={(r) => r.organizationId ?? 'unknown'} />)
              : (nodes.length === 0
                  ? <div className='card empty-inline'>No node matches “{filter}”.</div>
                  : <SortableTable rows={nodes} columns={NODE_COLUMNS} initialSort='tokens' caption='Contributions by node' testId='contrib-nodes' rowTestId='contrib-node-row' rowKey={(r) => r.peerId} />)}
        </section>
      )}
      {entries.isPending && <LoadingRows label='Loading entries…' />}
      {entries.data !== undefined && <EntriesTable entries={list} badSeq={badSeq} filter={filter} nodeNames={nodeNames} />}
    </div>
  )
}

export function LedgerPage ({ runId }: { runId?: string }): ReactNode {
  const trpc = useTRPC()
  const runs = useQuery({ ...trpc.runs.list.queryOptions(), refetchInterval: 15_000 })
  const now = useNow(5_000)
  const list = runs.data
  return (
    <>
      <PageHeader
        title='Ledger'
        description='Who contributed what to each run. Every row is chained to the one before it and every accepted report is signed by its node, so you can check it yourself.'
        actions={list !== undefined && list.length > 0 ? <RunPicker runs={list} current={runId} /> : undefined}
      />
      {list === undefined && runs.isPending && <LoadingRows label='Loading runs…' />}
      {list === undefined && runs.isError && <ErrorState title='Can’t load runs' error={runs.error} onRetry={() => { void runs.refetch() }} retrying={runs.isFetching} />}
      {list !== undefined && list.length === 0 && (
        <EmptyState icon={<LedgerIcon width='28' height='28' />} title='No runs yet, so no ledger' testId='ledger-empty'>
          <p>The ledger records every report a node makes to a run: tokens trained, compute donated, and whether the coordinator accepted it. Once a run trains, its ledger appears here with CSV and JSON exports and a button to verify it in your browser.</p>
        </EmptyState>
      )}
      {list !== undefined && list.length > 0 && runId === undefined && (
        <section className='section' aria-labelledby='pick-title'>
          <h2 id='pick-title' className='section-title'>Choose a run</h2>
          <div className='card table-card'>
            <table className='table table-responsive' data-testid='ledger-runs'>
              <caption className='visually-hidden'>Runs with a ledger</caption>
              <thead><tr><th scope='col'>Run</th><th scope='col'>Status</th><th scope='col' className='num-col'>Tokens</th><th scope='col'>Created</th><th scope='col'><span className='visually-hidden'>Open</span></th></tr></thead>
              <tbody>
                {list.map((r) => (
                  <tr key={r.id} data-testid='ledger-run-row' data-run-id={r.id}>
                    <td className='cell-primary' data-label='Run'><Link className='run-name' to={`/ledger/${r.id}`}>{r.name}</Link></td>
                    <td data-label='Status'><RunStatusBadge status={r.status} /></td>
                    <td data-label='Tokens' className='num num-col'>{formatCount(r.tokensSeen)}</td>
                    <td data-label='Created' className='nowrap'><RelativeTime iso={r.createdAt} now={now} /></td>
                    <td data-label='Ledger'><Link to={`/ledger/${r.id}`}>Open ledger →</Link></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
      {list !== undefined && runId !== undefined && <RunLedger key={runId} runId={runId} runs={list} />}
    </>
  )
}
