import { useState } from 'react'
import type { ReactNode } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useTRPC } from '../lib/trpc.ts'
import { apiErrorMessage } from '../lib/errors.ts'
import { FormMessage } from '../components/Form.tsx'

type InviteRole = 'lab_admin' | 'funder'

/** Invitation links into the lab: the only way another person joins an existing organization. */
export function LabInvitations ({ organizationId, organizationName }: { organizationId: string, organizationName: string }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const invitations = useQuery(trpc.people.invitations.queryOptions())
  const invite = useMutation(trpc.people.invite.mutationOptions())
  const revoke = useMutation(trpc.people.revokeInvitation.mutationOptions())
  const [role, setRole] = useState<InviteRole>('lab_admin')
  const [link, setLink] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const create = async (): Promise<void> => {
    setError(null)
    try {
      const made = await invite.mutateAsync({ role, organizationId, maxUses: 1 })
      setLink(new URL(made.path, window.location.origin).toString())
      await queryClient.invalidateQueries({ queryKey: trpc.people.invitations.queryKey() })
    } catch (err) {
      setError(apiErrorMessage(err))
    }
  }
  const open = (invitations.data ?? []).filter((i) => !i.revoked && i.usedCount < i.maxUses && new Date(i.expiresAt).getTime() > Date.now())
  return (
    <section className='card section-card' aria-labelledby='invite-title' data-testid='lab-invitations'>
      <header className='section-head'>
        <div>
          <h2 id='invite-title' className='section-title'>Invite people</h2>
          <p className='muted small'>Nobody joins <strong>{organizationName}</strong> by typing its name: send a one-time link, good for 7 days.</p>
        </div>
      </header>
      {error !== null && <FormMessage tone='danger' testId='invite-error'>{error}</FormMessage>}
      <div className='inline-form'>
        <label className='visually-hidden' htmlFor='invite-role'>Role</label>
        <select id='invite-role' className='input' value={role} onChange={(e) => { setRole(e.target.value as InviteRole) }} data-testid='invite-role'>
          <option value='lab_admin'>Lab admin (manages machines and tokens)</option>
          <option value='funder'>Funder (pledges delivered by this lab)</option>
        </select>
        <button type='button' className='button' disabled={invite.isPending} onClick={() => { void create() }} data-testid='create-invite'>Create invitation link</button>
      </div>
      {link !== null && <p className='small'>Send this link (shown once): <code className='mono wrap-anywhere' data-testid='invite-link'>{link}</code></p>}
      {open.length > 0 && (
        <ul className='plain-list small' data-testid='open-invitations'>
          {open.map((i) => (
            <li key={i.id} className='check-row'>
              {i.role === 'lab_admin' ? 'Lab admin' : i.role === 'funder' ? 'Funder' : 'Organizer'} · {i.maxUses - i.usedCount} use left · expires {new Date(i.expiresAt).toLocaleDateString()}
              <button type='button' className='button button-secondary button-small' disabled={revoke.isPending}
                onClick={() => { void revoke.mutateAsync({ id: i.id }).then(async () => { await queryClient.invalidateQueries({ queryKey: trpc.people.invitations.queryKey() }) }, (err: unknown) => { setError(apiErrorMessage(err)) }) }}
              >Revoke</button>
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}
