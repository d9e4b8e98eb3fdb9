import { useState } from 'react'
import type { FormEvent, ReactNode } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useTRPC } from '../lib/trpc.ts'
import { ROLE_CHOICES, ROLE_LABELS, homeFor, useMe } from '../lib/auth.ts'
import type { Me, SelfServeRole } from '../lib/auth.ts'
import { apiErrorCode, apiErrorMessage } from '../lib/errors.ts'
import { placeFieldErrors } from '../lib/field-errors.ts'
import type { CodeFields } from '../lib/field-errors.ts'
import { Link, navigate, useSearchParams } from '../lib/router.tsx'
import { safeNext } from '../lib/safe-next.ts'
import { Field, FormMessage, fieldAria } from '../components/Form.tsx'

function AuthCard ({ title, lead, children, footer }: { title: string, lead: ReactNode, children: ReactNode, footer: ReactNode }): ReactNode {
  return (
    <div className='auth-layout'>
      <section className='card auth-card'>
        <h1>{title}</h1>
        <p className='muted auth-lead'>{lead}</p>
        {children}
      </section>
      <p className='auth-footer muted'>{footer}</p>
    </div>
  )
}

function AlreadySignedIn ({ me }: { me: Me }): ReactNode {
  return (
    <AuthCard title='You’re signed in' lead={<>as <strong>{me.displayName}</strong> ({me.email}).</>} footer={<>Want another account? Sign out from the menu at the top right first.</>}>
      <Link className='button' to={homeFor(me)}>Continue</Link>
    </AuthCard>
  )
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

type Errors = Partial<Record<'email' | 'password' | 'displayName' | 'organization' | 'role' | 'setupCode', string>>

/** Sign-up refusals that belong to one field (the rest name their fields, or go above the form). */
const SIGN_UP_CODE_FIELDS: CodeFields = {
  ERR_NAME_TAKEN: 'organization',
  ERR_INVALID_SETUP_CODE: 'setupCode',
  // The coordinator's own words: they say no more about whether the email has an account than
  // a wrong password at sign-in does (ERR_EMAIL_TAKEN once the coordinator names it so).
  ERR_EMAIL_TAKEN: 'email',
  CONFLICT: 'email'
}

export function SignInPage (): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const me = useMe()
  const params = useSearchParams()
  const next = safeNext(params.get('next'))
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [errors, setErrors] = useState<Errors>({})
  const [formError, setFormError] = useState<string | null>(null)
  const signIn = useMutation(trpc.auth.signIn.mutationOptions())

  if (me.data !== null && me.data !== undefined && !signIn.isPending && !signIn.isSuccess) return <AlreadySignedIn me={me.data} />

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault()
    const found: Errors = {}
    if (!EMAIL.test(email.trim())) found.email = 'enter the email address you signed up with'
    if (password === '') found.password = 'enter your password'
    setErrors(found)
    setFormError(null)
    if (Object.keys(found).length > 0) return
    try {
      await signIn.mutateAsync({ email: email.trim(), password })
      const user = await queryClient.fetchQuery({ ...trpc.auth.me.queryOptions(), staleTime: 0 })
      await queryClient.invalidateQueries()
      navigate(next ?? (user !== null ? homeFor(user) : '/runs'))
    } catch (err) {
      setFormError(apiErrorCode(err) === 'BAD_REQUEST' ? 'Wrong email or password. Check both and try again.' : apiErrorMessage(err))
    }
  }

  return (
    <AuthCard
      title='Sign in'
      lead='Organizers, lab admins and funders sign in here. Anyone can look around without an account.'
      footer={<>New here? <Link to={`/signup${next !== null ? `?next=${encodeURIComponent(next)}` : ''}`} data-testid='to-signup'>Create an account</Link>.</>}
    >
      <form className='form' noValidate onSubmit={(e) => { void submit(e) }} data-testid='signin-form'>
        {formError !== null && <FormMessage tone='danger' testId='form-error'>{formError}</FormMessage>}
        <Field id='signin-email' label='Email' error={errors.email} field='email'>
          <input id='signin-email' className='input' type='email' name='email' autoComplete='email' value={email} onChange={(e) => { setEmail(e.target.value) }} {...fieldAria('signin-email', errors.email, undefined)} />
        </Field>
        <Field id='signin-password' label='Password' error={errors.password} field='password'>
          <input id='signin-password' className='input' type='password' name='password' autoComplete='current-password' value={password} onChange={(e) => { setPassword(e.target.value) }} {...fieldAria('signin-password', errors.password, undefined)} />
        </Field>
        <button type='submit' className='button button-block' disabled={signIn.isPending} data-testid='signin-submit'>
          {signIn.isPending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </AuthCard>
  )
}

function isSelfServe (role: string | null): role is SelfServeRole {
  return role === 'organizer' || role === 'lab_admin' || role === 'funder'
}

export function SignUpPage (): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const me = useMe()
  const params = useSearchParams()
  const next = safeNext(params.get('next'))
  const requested = params.get('role')
  const [role, setRole] = useState<SelfServeRole | null>(isSelfServe(requested) ? requested : null)
  const [displayName, setDisplayName] = useState('')
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [organization, setOrganization] = useState('')
  const [setupCode, setSetupCode] = useState(params.get('setup') ?? '')
  const invite = params.get('invite') ?? ''
  const [errors, setErrors] = useState<Errors>({})
  const [formError, setFormError] = useState<string | null>(null)
  const signUp = useMutation(trpc.auth.signUp.mutationOptions())
  const setup = useQuery(trpc.auth.setupStatus.queryOptions())
  const needsAdmin = setup.data?.needsAdmin === true
  const openOrganizing = setup.data?.openOrganizing === true
  const invited = invite !== '' && !needsAdmin

  if (me.data !== null && me.data !== undefined && !signUp.isPending && !signUp.isSuccess) return <AlreadySignedIn me={me.data} />

  const validate = (): Errors => {
    const found: Errors = {}
    if (role === null && !invited) found.role = 'choose what you want to do'
    if (needsAdmin && setupCode.trim() === '') found.setupCode = 'enter the setup code the coordinator printed when it started'
    // The coordinator's limits (auth.signUp), said before a round trip.
    if (displayName.trim() === '') found.displayName = 'tell us your name'
    else if (displayName.trim().length > 100) found.displayName = 'use at most 100 characters'
    if (!EMAIL.test(email.trim())) found.email = 'enter a valid email address'
    else if (email.trim().length > 200) found.email = 'use at most 200 characters'
    if (password.length < 10) found.password = 'use at least 10 characters'
    else if (password.length > 200) found.password = 'use at most 200 characters'
    if (role === 'lab_admin' && !invited && organization.trim() === '') found.organization = 'name the lab or organization whose machines you manage'
    return found
  }

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault()
    const found = validate()
    setErrors(found)
    setFormError(null)
    if (Object.keys(found).length > 0) {
      document.querySelector<HTMLElement>('.field-invalid input, .field-invalid [role="radio"]')?.focus()
      return
    }
    try {
      const user = await signUp.mutateAsync({
        email: email.trim(),
        password,
        displayName: displayName.trim(),
        role: role ?? 'funder',
        ...(!invited && organization.trim() !== '' && (role === 'lab_admin' || role === 'funder') ? { organization: organization.trim() } : {}),
        ...(invited ? { invite } : {}),
        ...(needsAdmin ? { setupCode: setupCode.trim() } : {})
      })
      queryClient.setQueryData(trpc.auth.me.queryKey(), user)
      await queryClient.invalidateQueries()
      navigate(next ?? homeFor(user))
    } catch (err) {
      // Only the fields on screen take a message; the rest (the invitation code from the link) is said above the form.
      const shown: Array<keyof Errors> = ['email', 'password', 'displayName', ...(needsAdmin ? ['setupCode' as const] : []), ...(invited ? [] : ['role' as const]), ...(!invited && (role === 'lab_admin' || role === 'funder') ? ['organization' as const] : [])]
      const placed = placeFieldErrors(err, shown, SIGN_UP_CODE_FIELDS)
      setErrors(placed.fields)
      setFormError(placed.message)
    }
  }

  return (
    <AuthCard
      title='Create your account'
      lead={needsAdmin
        ? 'This coordinator has no admin yet. Enter the setup code it printed when it started to become its admin; the admin can do everything.'
        : invited ? 'You were invited: your role and organization come with the invitation.' : 'Pick what you want to do.'}
      footer={<>Already have an account? <Link to={`/signin${next !== null ? `?next=${encodeURIComponent(next)}` : ''}`} data-testid='to-signin'>Sign in</Link>.</>}
    >
      <form className='form' noValidate onSubmit={(e) => { void submit(e) }} data-testid='signup-form'>
        {formError !== null && <FormMessage tone='danger' testId='form-error'>{formError}</FormMessage>}
        {needsAdmin && (
          <Field id='signup-setup' label='Setup code' hint='Printed by `pnpm coordinator serve` at start, on the coordinator’s machine.' error={errors.setupCode} field='setupCode'>
            <input id='signup-setup' className='input mono' name='setup-code' autoComplete='off' value={setupCode} onChange={(e) => { setSetupCode(e.target.value) }} {...fieldAria('signup-setup', errors.setupCode, true)} />
          </Field>
        )}
        {invited && <FormMessage tone='info' testId='invited'>Signing up with an invitation.</FormMessage>}
        {!invited && (
        <fieldset className={`field role-picker${errors.role !== undefined ? ' field-invalid' : ''}`} data-field='role'>
          <legend className='field-label'>I want to…</legend>
          <div className='role-options' role='radiogroup' aria-label='I want to'>
            {ROLE_CHOICES.map((choice) => (
              <label key={choice.role} className={`role-option${role === choice.role ? ' role-option-on' : ''}`} data-testid={`role-${choice.role}`}>
                <input type='radio' name='role' value={choice.role} checked={role === choice.role} onChange={() => { setRole(choice.role); setErrors({ ...errors, role: undefined }) }} />
                <span className='role-option-text'>
                  <span className='role-option-title'>{choice.title}</span>
                  <span className='role-option-desc'>{choice.description}</span>
                  <span className='role-option-tag'>{ROLE_LABELS[choice.role]}</span>
                </span>
              </label>
            ))}
          </div>
          {errors.role !== undefined && <p className='field-error' data-testid='field-error' data-field='role'>{errors.role}</p>}
          {role === 'organizer' && !openOrganizing && !needsAdmin && <p className='muted small' data-testid='organizer-invite-only'>Organizers on this coordinator are invited: ask its admin for an invitation link.</p>}
        </fieldset>
        )}
        {role === 'lab_admin' && !invited && (
          <Field id='signup-org' label='Organization' hint='A new organization, for the machines you will enroll. To join an existing one, ask its lab admin for an invitation link.' error={errors.organization} field='organization'>
            <input id='signup-org' className='input' name='organization' autoComplete='organization' value={organization} onChange={(e) => { setOrganization(e.target.value) }} {...fieldAria('signup-org', errors.organization, true)} />
          </Field>
        )}
        {role === 'funder' && !invited && (
          // Compute pledges are delivered by the pledger's organization's machines.
          <Field id='signup-org' label={<>Organization <span className='muted'>(optional)</span></>} hint='Whose machines deliver your GPU-hour or CPU core-hour pledges. Leave it empty to pledge money only.' error={errors.organization} field='organization'>
            <input id='signup-org' className='input' name='organization' autoComplete='organization' value={organization} onChange={(e) => { setOrganization(e.target.value) }} {...fieldAria('signup-org', errors.organization, true)} />
          </Field>
        )}
        <Field id='signup-name' label='Your name' error={errors.displayName} field='displayName'>
          <input id='signup-name' className='input' name='name' autoComplete='name' value={displayName} onChange={(e) => { setDisplayName(e.target.value) }} {...fieldAria('signup-name', errors.displayName, undefined)} />
        </Field>
        <Field id='signup-email' label='Email' error={errors.email} field='email'>
          <input id='signup-email' className='input' type='email' name='email' autoComplete='email' value={email} onChange={(e) => { setEmail(e.target.value) }} {...fieldAria('signup-email', errors.email, undefined)} />
        </Field>
        <Field id='signup-password' label='Password' hint='At least 10 characters.' error={errors.password} field='password'>
          <input id='signup-password' className='input' type='password' name='password' autoComplete='new-password' value={password} onChange={(e) => { setPassword(e.target.value) }} {...fieldAria('signup-password', errors.password, true)} />
        </Field>
        {/* Until the coordinator says whether it still needs its admin, the form cannot know
            whether a setup code is required or an invitation applies: submitting then would
            validate the wrong fields. */}
        <button type='submit' className='button button-block' disabled={signUp.isPending || setup.isPending} data-testid='signup-submit'>
          {signUp.isPending ? 'Creating your account…' : setup.isPending ? 'Checking this coordinator…' : 'Create account'}
        </button>
      </form>
    </AuthCard>
  )
}
