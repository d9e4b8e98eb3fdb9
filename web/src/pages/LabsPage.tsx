import { useState } from 'react'
import type { FormEvent, ReactNode } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useTRPC } from '../lib/trpc.ts'
import type { RouterOutputs } from '../lib/trpc.ts'
import { apiErrorCode, apiErrorMessage } from '../lib/errors.ts'
import { placeFieldErrors } from '../lib/field-errors.ts'
import { useNow } from '../lib/time.ts'
import { cleanCpuModel, formatCount, formatGiB, formatHours, plural, shortPeerId } from '../lib/format.ts'
import { useMe, userHasRole } from '../lib/auth.ts'
import type { Me } from '../lib/auth.ts'
import { PageHeader } from '../components/PageHeader.tsx'
import { Link } from '../lib/router.tsx'
import { RequireRole } from '../components/RequireRole.tsx'
import { Badge, NodeStatusBadge } from '../components/Badge.tsx'
import type { Tone } from '../components/Badge.tsx'
import { EmptyState, ErrorState, LoadingRows, StaleBanner } from '../components/States.tsx'
import { Stat } from '../components/Stat.tsx'
import { Field, FormMessage, fieldAria } from '../components/Form.tsx'
import { CommandBlock } from '../components/CommandBlock.tsx'
import { RelativeTime } from '../components/RelativeTime.tsx'
import { BeakerIcon, ServerIcon } from '../components/Icons.tsx'
import { LabServing } from './LabServing.tsx'
import { LabInvitations } from './LabInvitations.tsx'
import { ConfirmButton } from '../components/ConfirmButton.tsx'

type Overview = RouterOutputs['labs']['overview']
type Token = Overview['tokens'][number]
type NodeRow = RouterOutputs['nodes']['list'][number]

const EXPIRY_CHOICES = [
  { value: '', label: 'Never' },
  { value: '1', label: 'In 1 hour' },
  { value: '24', label: 'In 24 hours' },
  { value: '168', label: 'In 7 days' },
  { value: '720', label: 'In 30 days' }
]

/** 3.6e6 → "1 h"; 6.048e8 → "7 d". */
function formatHoursLeft (ms: number): string {
  const hours = ms / 3_600_000
  if (hours < 1) return `${Math.max(1, Math.round(hours * 60))} min`
  if (hours < 48) return `${Math.round(hours)} h`
  return `${Math.round(hours / 24)} d`
}

function tokenState (t: Token, now: number): { tone: Tone, label: string } {
  if (t.revoked) return { tone: 'danger', label: 'Revoked' }
  if (t.expiresAt !== null && new Date(t.expiresAt).getTime() <= now) return { tone: 'neutral', label: 'Expired' }
  if (t.usedCount >= t.maxUses) return { tone: 'neutral', label: 'Used up' }
  return { tone: 'success', label: 'Active' }
}

/** The token's secret and the command that uses it, shown once, right after creating it. */
function NewToken ({ created, onDismiss }: { created: { token: string, joinCommand: string, label: string | null }, onDismiss: () => void }): ReactNode {
  return (
    <section className='card token-once' data-testid='token-created' aria-labelledby='token-once-title'>
      <h3 id='token-once-title'>Token created{created.label !== null ? `: ${created.label}` : ''}</h3>
      <p className='small'>
        Run this in a Barnraise checkout on the machine you want to enroll (after <code>bash scripts/setup.sh</code> there).{' '}
        <strong>Copy it now: the token is shown only once</strong> (the coordinator keeps only its hash).
      </p>
      <CommandBlock label='Enroll a machine with this token' command={created.joinCommand} testId='join-command' wrap />
      <p className='muted small'>
        Token: <code className='mono' data-testid='token-secret'>{created.token}</code>.
      </p>
      <button type='button' className='button button-secondary button-small' onClick={onDismiss}>I’ve copied it</button>
    </section>
  )
}

function CreateTokenForm ({ onCreated }: { onCreated: (c: { token: string, joinCommand: string, label: string | null }) => void }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const [label, setLabel] = useState('')
  const [maxUses, setMaxUses] = useState('1')
  const [expires, setExpires] = useState('168')
  const [error, setError] = useState<string | undefined>()
  const [labelError, setLabelError] = useState<string | undefined>()
  const [formError, setFormError] = useState<string | null>(null)
  const create = useMutation(trpc.labs.createToken.mutationOptions())
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault()
    setFormError(null)
    setLabelError(undefined)
    const uses = Number(maxUses)
    if (maxUses.trim() === '' || !Number.isInteger(uses)) { setError('enter a whole number of machines'); return }
    if (uses < 1) { setError('at least 1 use'); return }
    if (uses > 10_000) { setError('at most 10,000 uses per token'); return }
    setError(undefined)
    try {
      const result = await create.mutateAsync({ maxUses: uses, ...(label.trim() !== '' ? { label: label.trim() } : {}), ...(expires !== '' ? { expiresInHours: Number(expires) } : {}) })
      onCreated({ token: result.token, joinCommand: result.joinCommand, label: label.trim() !== '' ? label.trim() : null })
      setLabel('')
      setMaxUses('1')
      await queryClient.invalidateQueries({ queryKey: [['labs']] })
    } catch (err) {
      // A refused label is said at the label, not in a banner naming the API's field.
      const placed = placeFieldErrors(err, ['maxUses', 'label'])
      setError(placed.fields.maxUses)
      setLabelError(placed.fields.label)
      setFormError(placed.message)
    }
  }
  return (
    <form className='form token-form' noValidate onSubmit={(e) => { void submit(e) }} data-testid='create-token-form'>
      {formError !== null && <FormMessage tone='danger' testId='form-error'>{formError}</FormMessage>}
      <div className='field-grid field-grid-3'>
        <Field id='token-label' label={<>Label <span className='muted'>(optional)</span></>} hint='e.g. “GPU rack B”' error={labelError} field='label'>
          <input id='token-label' className='input' value={label} maxLength={100} onChange={(e) => { setLabel(e.target.value) }} {...fieldAria('token-label', labelError, 'e.g. “GPU rack B”')} />
        </Field>
        <Field id='token-uses' label='Machines it can enroll' error={error} field='maxUses'>
          <input id='token-uses' className='input num' type='number' min={1} step={1} value={maxUses} onChange={(e) => { setMaxUses(e.target.value) }} {...fieldAria('token-uses', error, undefined)} />
        </Field>
        <Field id='token-expires' label='Expires' field='expiresInHours'>
          <select id='token-expires' className='input' value={expires} onChange={(e) => { setExpires(e.target.value) }}>
            {EXPIRY_CHOICES.map((c) => <option key={c.value} value={c.value}>{c.label}</option>)}
          </select>
        </Field>
      </div>
      <button type='submit' className='button' disabled={create.isPending} data-testid='create-token'>{create.isPending ? 'Creating…' : 'Create enrollment token'}</button>
    </form>
  )
}

function TokensTable ({ tokens }: { tokens: Token[] }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const now = useNow(5_000)
  const revoke = useMutation(trpc.labs.revokeToken.mutationOptions({
    onSuccess: async () => { await queryClient.invalidateQueries({ queryKey: [['labs']] }) }
  }))
  if (tokens.length === 0) return <p className='muted empty-inline-text' data-testid='tokens-empty'>No tokens yet. Create one above, then run the command it gives you on each machine.</p>
  return (
    <div className='table-card inner-table'>
      <table className='table table-responsive table-grid' data-testid='tokens-table'>
        <caption className='visually-hidden'>Enrollment tokens</caption>
        <thead>
          <tr><th scope='col'>Token</th><th scope='col'>Status</th><th scope='col' className='num-col'>Used</th><th scope='col'>Expires</th><th scope='col'>Created</th><th scope='col'><span className='visually-hidden'>Actions</span></th></tr>
        </thead>
        <tbody>
          {tokens.map((t) => {
            const state = tokenState(t, now)
            return (
              <tr key={t.id} data-testid='token-row' data-token-id={t.id} data-state={state.label.toLowerCase()}>
                <td className='cell-primary' data-label='Token'><span className='strong'>{t.label ?? 'Untitled token'}</span> <span className='mono muted small'>{t.id.slice(0, 8)}</span></td>
                <td data-label='Status'><Badge tone={state.tone}>{state.label}</Badge></td>
                <td data-label='Used' className='num num-col'>{t.usedCount} of {t.maxUses}</td>
                <td data-label='Expires' className='nowrap'>{t.expiresAt === null ? <span className='muted'>never</span> : new Date(t.expiresAt).getTime() > now ? `in ${formatHoursLeft(new Date(t.expiresAt).getTime() - now)}` : <RelativeTime iso={t.expiresAt} now={now} />}</td>
                <td data-label='Created' className='nowrap'><RelativeTime iso={t.createdAt} now={now} /></td>
                <td data-label='Actions' className='actions-cell'>
                  {state.label === 'Active' && <ConfirmButton label='Revoke…' confirmLabel='Revoke' cancelLabel='Keep' pending={revoke.isPending} onConfirm={() => { revoke.mutate({ id: t.id }) }} testId='token-revoke' />}
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
      {revoke.isError && <p className='field-error' role='alert'>{apiErrorMessage(revoke.error)}</p>}
    </div>
  )
}

function LabNodes ({ organizationId }: { organizationId: string }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const now = useNow(1_000)
  const nodes = useQuery({ ...trpc.nodes.list.queryOptions({ organizationId }), refetchInterval: 5_000 })
  const revoke = useMutation(trpc.nodes.revoke.mutationOptions({
    onSuccess: async () => { await queryClient.invalidateQueries({ queryKey: [['nodes']] }) }
  }))
  const list: NodeRow[] = nodes.data ?? []
  return (
    <section className='section' aria-labelledby='lab-nodes-title'>
      <div className='section-head'>
        <h2 id='lab-nodes-title' className='section-title'>Your machines</h2>
        <span className='muted small'>{list.filter((n) => n.online).length} online, {list.length} enrolled</span>
      </div>
      {nodes.isPending && <LoadingRows label='Loading your machines…' rows={2} />}
      {nodes.isError && list.length === 0 && <ErrorState title='Can’t load your machines' error={nodes.error} onRetry={() => { void nodes.refetch() }} />}
      {nodes.data !== undefined && list.length === 0 && (
        <div className='card empty-inline' data-testid='lab-nodes-empty'>
          <ServerIcon /> No machines enrolled yet. Create a token above and run its command on a machine: it appears here within seconds.
        </div>
      )}
      {list.length > 0 && (
        <div className='card table-card'>
          <table className='table table-responsive table-grid' data-testid='lab-nodes-table'>
            <caption className='visually-hidden'>Your organization’s machines</caption>
            <thead>
              <tr><th scope='col'>Machine</th><th scope='col'>Status</th><th scope='col'>Hardware</th><th scope='col'>Last seen</th><th scope='col'><span className='visually-hidden'>Actions</span></th></tr>
            </thead>
            <tbody>
              {list.map((n) => (
                <tr key={n.id} data-testid='lab-node-row' data-peer-id={n.peerId} data-node-id={n.id} className={n.online ? undefined : 'row-dim'}>
                  <td className='cell-primary' data-label='Machine'>
                    <div className='node-name'>{n.name}</div>
                    <div className='mono muted small' title={n.peerId}>{shortPeerId(n.peerId)}</div>
                  </td>
                  <td data-label='Status'><NodeStatusBadge status={n.status} online={n.online} revoked={n.revoked} /></td>
                  <td data-label='Hardware'>
                    <div>
                      <div>{cleanCpuModel(n.hardware.cpuModel)} <span className='num nowrap'>× {n.hardware.cpuCores}</span></div>
                      <div className='muted small'>{formatGiB(n.hardware.memoryBytes)} · {n.hardware.gpus.length === 0 ? 'CPU only' : plural(n.hardware.gpus.length, 'GPU')}</div>
                    </div>
                  </td>
                  <td data-label='Last seen' className='nowrap'><RelativeTime iso={n.lastSeenAt} now={now} /></td>
                  <td data-label='Actions' className='actions-cell'>
                    {!n.revoked && <ConfirmButton label='Revoke…' confirmLabel='Revoke machine' cancelLabel='Keep' pending={revoke.isPending} onConfirm={() => { revoke.mutate({ id: n.id }) }} testId='node-revoke' />}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {revoke.isError && <p className='field-error' role='alert'>{apiErrorMessage(revoke.error)}</p>}
        </div>
      )}
      <p className='muted small section-foot'>A revoked machine is disconnected at once and can never take work again, even with a new token from the same key.</p>
    </section>
  )
}

function LabOverview ({ me }: { me: Me }): ReactNode {
  const trpc = useTRPC()
  const overview = useQuery({ ...trpc.labs.overview.queryOptions(), refetchInterval: 15_000 })
  const [created, setCreated] = useState<{ token: string, joinCommand: string, label: string | null } | null>(null)
  if (overview.isPending) return <LoadingRows label='Loading your lab…' rows={4} />
  if (overview.isError && overview.data === undefined) {
    if (apiErrorCode(overview.error) === 'PRECONDITION_FAILED') {
      return (
        <EmptyState icon={<BeakerIcon width='28' height='28' />} title='Your account isn’t part of a lab' testId='no-organization'>
          {me.roles.includes('admin')
            ? <p>Your admin account isn’t tied to an organization, so there is no lab to show here. Lab admins sign up naming their organization and manage it from this page. As the admin you can still issue a token for any organization on the coordinator’s machine:</p>
            : <p>{apiErrorMessage(overview.error)}. A lab admin account names its organization at sign-up; meanwhile an admin can issue tokens on the coordinator’s machine:</p>}
          <CommandBlock label='Create an enrollment token' command='pnpm coordinator token create --org "Your Lab"' />
          <p className='muted small'>Every enrolled machine, whatever its organization, is on the <Link to='/nodes'>Nodes</Link> page.</p>
        </EmptyState>
      )
    }
    return <ErrorState title='Can’t load your lab' error={overview.error} onRetry={() => { void overview.refetch() }} retrying={overview.isFetching} />
  }
  const o = overview.data!
  const active = o.tokens.filter((t) => !t.revoked && t.usedCount < t.maxUses && (t.expiresAt === null || new Date(t.expiresAt).getTime() > Date.now())).length
  return (
    <div data-testid='lab-overview' data-org={o.organization.name}>
      {overview.isError && <StaleBanner error={overview.error} />}
      <div className='stats' aria-label='Your organization’s contribution'>
        <Stat label='Tokens trained' value={<span data-testid='lab-tokens-trained'>{formatCount(o.contribution.tokens)}</span>} hint='accepted by runs, all time' />
        <Stat label='Compute donated' value={<span data-testid='lab-compute'>{formatHours(o.contribution.gpuHours)} <span className='muted small'>GPU-h</span></span>} hint={`plus ${formatHours(o.contribution.cpuCoreHours)} CPU core-h from CPU-only machines`} />
        <Stat label='Reports accepted' value={o.contribution.reports.toLocaleString()} hint='one per node per round' />
        <Stat label='Active tokens' value={active.toLocaleString()} hint={`${o.tokens.length} issued`} />
      </div>

      <section className='card section-card' aria-labelledby='tokens-title'>
        <header className='section-head'>
          <div>
            <h2 id='tokens-title' className='section-title'>Enrollment tokens</h2>
            <p className='muted small'>A token binds a machine’s key to <strong>{o.organization.name}</strong> the first time it joins. Give one token to one machine, or allow several uses for a fleet.</p>
          </div>
        </header>
        {created !== null && <NewToken created={created} onDismiss={() => { setCreated(null) }} />}
        <CreateTokenForm onCreated={setCreated} />
        <TokensTable tokens={o.tokens} />
        {o.multiaddrs.length > 0 && (
          <details className='explainer'>
            <summary>Coordinator addresses</summary>
            <ul className='plain-list mono small wrap-anywhere'>{o.multiaddrs.map((m) => <li key={m}>{m}</li>)}</ul>
            <p className='muted small'>The join command uses the first; any address your machines can reach works.</p>
          </details>
        )}
      </section>

      <LabServing organizationName={o.organization.name} />

      <LabInvitations organizationId={o.organization.id} organizationName={o.organization.name} />

      <LabNodes organizationId={o.organization.id} />
    </div>
  )
}

export function LabsPage (): ReactNode {
  const me = useMe()
  const org = userHasRole(me.data, 'lab_admin') ? me.data?.organizationName ?? null : null
  return (
    <>
      <PageHeader
        title='Labs'
        description={org !== null
          ? <><strong className='text-strong'>{org}</strong>: enroll your machines with tokens, watch them train, revoke what you no longer trust, and see what your lab has given.</>
          : 'Lab admins enroll their organization’s machines here, with one-time tokens, and follow what they contribute.'}
      />
      <RequireRole role='lab_admin' doing='manage your lab’s machines'>
        {(user) => <LabOverview me={user} />}
      </RequireRole>
    </>
  )
}
