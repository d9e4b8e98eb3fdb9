import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import type { ReactNode } from 'react'
import { useTRPC } from '../lib/trpc.ts'
import { Link } from '../lib/router.tsx'
import type { NodeSummary } from '../lib/trpc.ts'
import { useNow } from '../lib/time.ts'
import { cleanCpuModel, formatCount, formatGiB, formatGpuMemory, formatScore, groupGpus, shortPeerId } from '../lib/format.ts'
import { apiErrorMessage } from '../lib/errors.ts'
import { PageHeader } from '../components/PageHeader.tsx'
import { Badge, NodeStatusBadge } from '../components/Badge.tsx'
import { ConfirmButton } from '../components/ConfirmButton.tsx'
import { EmptyState, ErrorState, LoadingRows, StaleBanner } from '../components/States.tsx'
import { CommandBlock } from '../components/CommandBlock.tsx'
import { advertisedMultiaddr, agentJoinCommand, loopbackOnly } from '@barnraise/protocol/join-command'
import { RelativeTime } from '../components/RelativeTime.tsx'
import { ServerIcon } from '../components/Icons.tsx'
import { Stat } from '../components/Stat.tsx'

/** How to put a machine on the map; shown when there are none, and on demand after. */
function EnrollSteps (): ReactNode {
  const trpc = useTRPC()
  const health = useQuery({ ...trpc.health.queryOptions(), staleTime: 60_000 })
  const multiaddrs = health.data?.multiaddrs ?? []
  return (
    <ol className='steps'>
      <li>
        <h3>Create an enrollment token for your lab</h3>
        <p>
          Lab admins create one on the <Link to='/labs'>Labs</Link> page, which also shows the exact command to run.
          Or, in the Barnraise checkout that runs this coordinator:
        </p>
        <CommandBlock label='Create an enrollment token' command='pnpm coordinator token create' />
        <p className='muted small'>
          It is for the install’s only lab; on an install with several, add <code>--org "Your Lab"</code>. A token enrolls one
          machine; add <code>--uses 10</code> to enroll several with the same token. It prints the join command below, token filled in.
        </p>
      </li>
      <li>
        <h3>Run the agent on the machine you want to donate</h3>
        <p>In a Barnraise checkout on that machine (copy or clone this one there):</p>
        <CommandBlock label='Enroll a machine' command={`bash scripts/setup.sh && ${agentJoinCommand(multiaddrs, '<token>')}`} testId='enroll-command' wrap />
        <p className='muted small wrap-code'>
          On the coordinator’s own machine, in this checkout, <code>{agentJoinCommand(multiaddrs, '<token>')}</code> is enough.{' '}
          {loopbackOnly(multiaddrs)
            ? <>This coordinator listens on this machine only (loopback); for other machines, restart it with <code>pnpm coordinator serve --host 0.0.0.0</code>.</>
            : multiaddrs.length > 1
              ? <>The coordinator also listens on {multiaddrs.filter((m) => m !== advertisedMultiaddr(multiaddrs)).map((m, i) => <span key={m}>{i > 0 && ', '}<code>{m}</code></span>)}.</>
              : null}
        </p>
      </li>
      <li>
        <h3>Watch it appear here</h3>
        <p>This page updates by itself as machines connect, train and go offline.</p>
      </li>
    </ol>
  )
}

function NodeStats ({ nodes }: { nodes: NodeSummary[] }): ReactNode {
  const online = nodes.filter((n) => n.online && !n.revoked)
  const training = online.filter((n) => n.status === 'training').length
  const cores = online.reduce((sum, n) => sum + n.hardware.cpuCores, 0)
  const gpus = online.reduce((sum, n) => sum + n.hardware.gpus.length, 0)
  const memory = online.reduce((sum, n) => sum + n.hardware.memoryBytes, 0)
  return (
    <div className='stats' aria-label='Compute online now'>
      <Stat label='Online now' value={`${online.length} of ${nodes.length}`} hint={training > 0 ? `${training} training` : 'nodes connected'} testId='stat-online' />
      <Stat label='CPU cores' value={cores.toLocaleString()} hint='on online nodes' />
      <Stat label='GPUs' value={gpus.toLocaleString()} hint={gpus === 0 ? 'none online yet' : 'on online nodes'} />
      <Stat label='Memory' value={formatGiB(memory)} hint='on online nodes' />
    </div>
  )
}

function Gpus ({ gpus }: { gpus: NodeSummary['hardware']['gpus'] }): ReactNode {
  if (gpus.length === 0) return <span className='muted nowrap'>CPU only</span>
  return (
    <ul className='plain-list'>
      {groupGpus(gpus).map((g) => (
        <li key={`${g.name}-${g.memoryMiB}`}>
          {g.count > 1 && <span className='num'>{g.count} × </span>}{g.name}
          <span className='muted'> · {formatGpuMemory(g.memoryMiB)}</span>
        </li>
      ))}
    </ul>
  )
}

/**
 * A node's verdicts since its last review: reports folded, reports excluded (by reason) and its
 * mean score; and, while it is quarantined, why, with a release for those who may review it.
 */
function NodeRecordCell ({ node }: { node: NodeSummary }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const release = useMutation(trpc.nodes.release.mutationOptions({
    onSuccess: async () => { await queryClient.invalidateQueries({ queryKey: trpc.nodes.list.queryKey() }) }
  }))
  const r = node.record
  const flags = r === null ? [] : Object.entries(r.flags)
  const flagged = flags.reduce((sum, [, n]) => sum + n, 0)
  return (
    <div data-testid='node-record'>
      {node.quarantine !== null && (
        <div className='quarantine' data-testid='node-quarantine'>
          <Badge tone='danger'>Quarantined</Badge>
          <div className='small' title='Its reports are scored but neither folded nor credited until an organizer of a run it reported to, or an admin, reviews and releases it (its own lab cannot).'>{node.quarantine.reason}; scored, not credited, until reviewed.</div>
          {r !== null && r.passedWhileQuarantined > 0 && <div className='small muted'>{formatCount(r.passedWhileQuarantined)} report{r.passedWhileQuarantined === 1 ? '' : 's'} passed screening since.</div>}
          {node.mayReview && (
            <ConfirmButton label='Release…' confirmLabel='Release' cancelLabel='Keep' pending={release.isPending} onConfirm={() => { release.mutate({ id: node.id }) }} testId='node-release' ariaLabel={`Release ${node.name} from quarantine`} />
          )}
          {release.isError && <p className='field-error' role='alert'>{apiErrorMessage(release.error)}</p>}
        </div>
      )}
      {r === null
        ? <span className='muted'>no reports yet</span>
        : (
          <div className='small'>
            <span className='num'>{formatCount(r.folded)}</span> folded
            {flagged > 0 && <> · <span className='danger-inline num' title={flags.map(([code, n]) => `${code} ×${n}`).join(', ')}>{formatCount(flagged)} excluded</span></>}
            {r.meanScore !== null && <div className='muted num' title='Mean loss its reports removed on held-out data'>mean score {formatScore(r.meanScore)}</div>}
          </div>
          )}
    </div>
  )
}

function NodeRow ({ node, now }: { node: NodeSummary, now: number }): ReactNode {
  const hw = node.hardware
  return (
    <tr data-testid='node-row' data-peer-id={node.peerId} data-node-id={node.id} data-quarantined={node.quarantine !== null} className={node.online ? undefined : 'row-dim'}>
      <td className='cell-primary' data-label='Node'>
        <div className='node-name' data-testid='node-name'>{node.name}</div>
        <div className='mono muted small' title={node.peerId}>{shortPeerId(node.peerId)}</div>
      </td>
      <td data-label='Organization' data-testid='node-org'>{node.organizationName}</td>
      <td data-label='Status'>
        <NodeStatusBadge status={node.status} online={node.online} revoked={node.revoked} />
      </td>
      <td data-label='CPU' data-testid='node-cpu'>
        <div>
          <div title={hw.cpuModel}>{cleanCpuModel(hw.cpuModel)} <span className='num nowrap'>× {hw.cpuCores}</span></div>
          <div className='muted small'>{hw.platform} · {hw.arch}</div>
        </div>
      </td>
      <td data-label='Memory' className='num nowrap' data-testid='node-memory'>{formatGiB(hw.memoryBytes)}</td>
      <td data-label='GPUs' data-testid='node-gpus'><Gpus gpus={hw.gpus} /></td>
      <td data-label='Record'><NodeRecordCell node={node} /></td>
      <td data-label='Agent' className='nowrap'><span className='mono small'>{node.agentVersion ?? '—'}</span></td>
      <td data-label='First seen' className='nowrap'><RelativeTime iso={node.firstSeenAt} now={now} /></td>
      <td data-label='Last seen' className='nowrap'><RelativeTime iso={node.lastSeenAt} now={now} testId='node-last-seen' /></td>
    </tr>
  )
}

function NodesTable ({ nodes }: { nodes: NodeSummary[] }): ReactNode {
  const now = useNow(1_000)
  return (
    <div className='card table-card'>
      <table className='table table-responsive' data-testid='nodes-table'>
        <caption className='visually-hidden'>Enrolled nodes</caption>
        <thead>
          <tr>
            <th scope='col'>Node</th>
            <th scope='col'>Organization</th>
            <th scope='col'>Status</th>
            <th scope='col'>CPU</th>
            <th scope='col'>Memory</th>
            <th scope='col'>GPUs</th>
            <th scope='col' title='Reports folded and excluded since its last review'>Record</th>
            <th scope='col'>Agent</th>
            <th scope='col'>First seen</th>
            <th scope='col'>Last seen</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((node) => <NodeRow key={node.id} node={node} now={now} />)}
        </tbody>
      </table>
    </div>
  )
}

export function NodesPage (): ReactNode {
  const trpc = useTRPC()
  // Live events invalidate this query; the interval is a safety net for missed events.
  const nodes = useQuery({ ...trpc.nodes.list.queryOptions(), refetchInterval: 5_000 })
  const list = nodes.data
  const description = 'Machines that labs and volunteers have enrolled to donate compute. Status updates live.'

  return (
    <>
      <PageHeader title='Nodes' description={description} />
      {list === undefined && nodes.isPending && <LoadingRows label='Loading nodes…' />}
      {list === undefined && nodes.isError && (
        <ErrorState title='Can’t load nodes' error={nodes.error} onRetry={() => { void nodes.refetch() }} retrying={nodes.isFetching} />
      )}
      {list !== undefined && nodes.isError && <StaleBanner error={nodes.error} />}
      {list !== undefined && list.length === 0 && (
        <EmptyState icon={<ServerIcon width='28' height='28' />} title='No machines enrolled yet' testId='nodes-empty'>
          <p>Enroll a machine to donate its CPU or GPU time to open pretraining runs. Lab admins do it in two commands:</p>
          <EnrollSteps />
        </EmptyState>
      )}
      {list !== undefined && list.length > 0 && (
        <>
          <NodeStats nodes={list} />
          <NodesTable nodes={list} />
          <details className='card disclosure'>
            <summary>How to enroll another machine</summary>
            <EnrollSteps />
          </details>
        </>
      )}
    </>
  )
}
