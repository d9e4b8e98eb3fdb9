import type { ReactNode } from 'react'
import { useQuery } from '@tanstack/react-query'
import { useTRPC } from '../../lib/trpc.ts'
import { formatCount, formatDuration, formatRate, formatThroughput, shortPeerId } from '../../lib/format.ts'
import { Link } from '../../lib/router.tsx'
import { NodeStatusBadge } from '../../components/Badge.tsx'
import { ErrorState, LoadingRows } from '../../components/States.tsx'
import { formatDeviceHours } from '../../lib/pledge-units.ts'
import type { Round } from './run-types.ts'

/** The nodes that worked on this run, from the ledger, with those in the open round that have not reported yet. */
export function RunNodes ({ runId, rounds }: { runId: string, rounds: Round[] }): ReactNode {
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
    rows.push({ nodeId: p.nodeId, peerId: node?.peerId ?? '', nodeName: p.name, organizationId: node?.organizationId ?? null, organizationName: node?.organizationName ?? '—', kind: (node?.hardware.gpus.length ?? 0) > 0 ? 'gpu' : 'cpu', tokens: 0, computeHours: 0, gpuHours: 0, cpuCoreHours: 0, accepted: 0, refused: 0, firstReportSeconds: null, node })
  }
  rows.sort((a, b) => b.tokens - a.tokens)
  const links = new Map((contributions.data?.links ?? []).map((l) => [l.nodeId, l]))
  const shown = rows.map((r) => ({ ...r, link: r.nodeId !== null ? links.get(r.nodeId) : undefined }))
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
                <th scope='col' className='num-col' title='from its first work unit of this run to its first accepted report'>First report</th>
                <th scope='col' className='num-col' title='its report uploads, as the coordinator measured them'>Upload</th>
                <th scope='col' title='the codec of its latest unit of this run'>Codec</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
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
                  <td data-label='First report' className='num num-col' data-testid='node-first-report'>{r.firstReportSeconds === null ? <span className='muted'>—</span> : `after ${formatDuration(r.firstReportSeconds)}`}</td>
                  <td data-label='Upload' className='num num-col nowrap' data-testid='node-upload'>{r.link !== undefined && r.link.uploadBytesPerSecond !== null ? formatRate(r.link.uploadBytesPerSecond) : <span className='muted'>—</span>}</td>
                  <td data-label='Codec' className='mono' data-testid='node-codec'>{r.link?.codec ?? <span className='muted'>—</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className='muted small section-foot'>Throughput is tokens per compute-second, from the ledger. Upload is how fast the node’s reports reached the coordinator, as the coordinator timed them; codec is the one its latest unit of this run was handed out in (a run may let slow links send a smaller one). First report is how long a node took from its first work unit of this run to its first accepted report: for a node that joins late, mostly fetching the base and the data. A machine that lists a GPU delivers GPU-hours (compute-seconds ÷ 3600); a CPU-only machine delivers CPU core-hours (compute-seconds × its cores ÷ 3600), as each machine describes itself.</p>
    </section>
  )
}
