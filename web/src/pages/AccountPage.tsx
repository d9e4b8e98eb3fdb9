import { useState } from 'react'
import type { FormEvent, ReactNode } from 'react'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useTRPC } from '../lib/trpc.ts'
import { describeRole, useMe } from '../lib/auth.ts'
import type { Me } from '../lib/auth.ts'
import { apiErrorMessage } from '../lib/errors.ts'
import { placeFieldErrors } from '../lib/field-errors.ts'
import { Link, navigate, usePathname } from '../lib/router.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Field, FormMessage, fieldAria } from '../components/Form.tsx'
import { ConfirmButton } from '../components/ConfirmButton.tsx'
import { EmptyState, ErrorState, LoadingRows } from '../components/States.tsx'
import { LockIcon } from '../components/Icons.tsx'
import { signInHref } from '../components/RequireRole.tsx'

/** The signed-in person's own account: who they are here, a new password, and signing out everywhere. */
export function AccountPage (): ReactNode {
  const me = useMe()
  const pathname = usePathname()
  if (me.isPending) return <LoadingRows label='Checking who is signed in…' rows={2} />
  if (me.isError) return <ErrorState title='Can’t tell who is signed in' error={me.error} onRetry={() => { void me.refetch() }} retrying={me.isFetching} />
  if (me.data === null) {
    return (
      <EmptyState icon={<LockIcon width='28' height='28' />} title='Sign in to see your account' testId='auth-required'>
        <div className='actions-row'><Link className='button' to={signInHref(pathname)}>Sign in</Link></div>
      </EmptyState>
    )
  }
  return (
    <>
      <PageHeader title='Your account' description='Your password, and where you are signed in.' />
      <section className='card section-card section' aria-labelledby='who-title'>
        <h2 id='who-title' className='section-title'>{me.data.displayName}</h2>
        <p className='muted' data-testid='account-details'>{me.data.email} · {describeRole(me.data)}{me.data.organizationName !== null ? ` · ${me.data.organizationName}` : ''}</p>
      </section>
      <ChangePassword />
      <SignOutEverywhere me={me.data} />
    </>
  )
}

const NEW_PASSWORD_HINT = 'At least 10 characters. Every other place you are signed in is signed out.'

type Errors = Partial<Record<'password' | 'newPassword' | 'confirm', string>>

function ChangePassword (): ReactNode {
  const trpc = useTRPC()
  const change = useMutation(trpc.auth.changePassword.mutationOptions())
  const [password, setPassword] = useState('')
  const [newPassword, setNewPassword] = useState('')
  const [confirm, setConfirm] = useState('')
  const [errors, setErrors] = useState<Errors>({})
  const [outcome, setOutcome] = useState<{ tone: 'success' | 'danger', text: string } | null>(null)

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault()
    const found: Errors = {}
    if (password === '') found.password = 'enter the password you use now'
    if (newPassword.length < 10) found.newPassword = 'use at least 10 characters'
    // The coordinator's limit (auth.changePassword): said here rather than after a round trip.
    else if (newPassword.length > 200) found.newPassword = 'use at most 200 characters'
    else if (newPassword === password) found.newPassword = 'choose a password other than the one you use now'
    if (confirm !== newPassword) found.confirm = 'type the new password the same way twice'
    setErrors(found)
    setOutcome(null)
    if (Object.keys(found).length > 0) return
    try {
      await change.mutateAsync({ password, newPassword })
      setPassword(''); setNewPassword(''); setConfirm('')
      setOutcome({ tone: 'success', text: 'Password changed. You stay signed in here; everywhere else you were signed in, you are signed out.' })
    } catch (err) {
      // A refused new password (longer than the coordinator takes) is said at that field, in plain words.
      const placed = placeFieldErrors(err, ['password', 'newPassword'])
      setErrors(placed.fields)
      if (placed.message !== null) setOutcome({ tone: 'danger', text: placed.message })
    }
  }

  return (
    <section className='card section-card section' aria-labelledby='password-title'>
      <h2 id='password-title' className='section-title'>Change your password</h2>
      <form className='form account-form' noValidate onSubmit={(e) => { void submit(e) }} data-testid='password-form'>
        {outcome !== null && <FormMessage tone={outcome.tone} testId='password-outcome'>{outcome.text}</FormMessage>}
        <Field id='account-password' label='Current password' error={errors.password} field='password'>
          <input id='account-password' className='input' type='password' autoComplete='current-password' value={password} onChange={(e) => { setPassword(e.target.value) }} {...fieldAria('account-password', errors.password, undefined)} />
        </Field>
        <Field id='account-new-password' label='New password' hint={NEW_PASSWORD_HINT} error={errors.newPassword} field='newPassword'>
          <input id='account-new-password' className='input' type='password' autoComplete='new-password' value={newPassword} onChange={(e) => { setNewPassword(e.target.value) }} {...fieldAria('account-new-password', errors.newPassword, NEW_PASSWORD_HINT)} />
        </Field>
        <Field id='account-confirm' label='New password again' error={errors.confirm} field='confirm'>
          <input id='account-confirm' className='input' type='password' autoComplete='new-password' value={confirm} onChange={(e) => { setConfirm(e.target.value) }} {...fieldAria('account-confirm', errors.confirm, undefined)} />
        </Field>
        <button type='submit' className='button' disabled={change.isPending} data-testid='password-submit'>{change.isPending ? 'Changing…' : 'Change password'}</button>
      </form>
    </section>
  )
}

function SignOutEverywhere ({ me }: { me: Me }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const end = useMutation(trpc.auth.signOutEverywhere.mutationOptions())
  return (
    <section className='card section-card section' aria-labelledby='everywhere-title'>
      <h2 id='everywhere-title' className='section-title'>Sign out everywhere</h2>
      <p className='muted'>Ends every session of {me.email}: other browsers, other computers, and this one. Use it after signing in on a shared computer or losing a device.</p>
      <div className='actions-row'>
        <ConfirmButton
          label='Sign out everywhere…'
          confirmLabel='Sign out everywhere'
          cancelLabel='Keep'
          className='button button-secondary'
          pending={end.isPending}
          onConfirm={() => { void end.mutateAsync().then(async () => { await queryClient.invalidateQueries(); navigate('/signin') }) }}
          testId='sign-out-everywhere'
        />
      </div>
      {end.isError && <p className='field-error' role='alert'>{apiErrorMessage(end.error)}</p>}
    </section>
  )
}
