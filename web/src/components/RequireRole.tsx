import type { ReactNode } from 'react'
import { ROLE_LABELS, useMe, userHasRole } from '../lib/auth.ts'
import type { Me, Role } from '../lib/auth.ts'
import { Link, usePathname } from '../lib/router.tsx'
import { EmptyState, ErrorState, LoadingRows } from './States.tsx'
import { LockIcon } from './Icons.tsx'

/** "/signin?next=/labs" — back to where the person was once they have signed in. */
export function signInHref (next: string, page: 'signin' | 'signup' = 'signin', role?: Role): string {
  const params = new URLSearchParams({ next })
  if (role !== undefined && role !== 'admin') params.set('role', role)
  return `/${page}?${params.toString()}`
}

/**
 * Shows `children(me)` only to someone with `role`; everyone else is told what the page is
 * for, that it needs that role, and how to sign in or sign up. (The server checks the role
 * again on every call; this is only so people aren't met with errors.)
 */
export function RequireRole ({ role, doing, children }: { role: Role, doing: string, children: (me: Me) => ReactNode }): ReactNode {
  const me = useMe()
  const pathname = usePathname()
  if (me.isPending) return <LoadingRows label='Checking who is signed in…' rows={2} />
  if (me.isError) return <ErrorState title='Can’t tell who is signed in' error={me.error} onRetry={() => { void me.refetch() }} retrying={me.isFetching} />
  const user = me.data
  const roleName = ROLE_LABELS[role].toLowerCase()
  if (user === null) {
    return (
      <EmptyState icon={<LockIcon width='28' height='28' />} title={`Sign in to ${doing}`} testId='auth-required'>
        <p>You need to be signed in with a <strong>{roleName}</strong> account to {doing}.</p>
        <div className='actions-row'>
          <Link className='button' to={signInHref(pathname)} data-testid='auth-required-signin'>Sign in</Link>
          <Link className='button button-secondary' to={signInHref(pathname, 'signup', role)}>Create a {roleName} account</Link>
        </div>
      </EmptyState>
    )
  }
  if (!userHasRole(user, role)) {
    return (
      <EmptyState icon={<LockIcon width='28' height='28' />} title={`This needs the ${roleName} role`} testId='role-required'>
        <p>
          You’re signed in as <strong>{user.displayName}</strong> ({user.roles.map((r) => ROLE_LABELS[r].toLowerCase()).join(', ')}).
          To {doing}, sign in with a {roleName} account, or create one.
        </p>
        <div className='actions-row'>
          <Link className='button button-secondary' to={signInHref(pathname, 'signup', role)}>Create a {roleName} account</Link>
        </div>
      </EmptyState>
    )
  }
  return children(user)
}
