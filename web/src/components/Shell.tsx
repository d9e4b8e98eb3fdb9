import { useEffect, useRef, useState } from 'react'
import type { ReactNode } from 'react'
import { Link, NavLink, navigate, usePathname } from '../lib/router.tsx'
import type { LiveState } from '../lib/live.ts'
import { describeRole, useMe, useSignOut, userHasRole } from '../lib/auth.ts'
import type { Me } from '../lib/auth.ts'
import { ChevronDownIcon, Logo } from './Icons.tsx'
import { signInHref } from './RequireRole.tsx'

/** The main places, in the order a newcomer meets them; Labs joins for lab admins. */
export const NAV_ITEMS = [
  { to: '/runs', label: 'Runs' },
  { to: '/nodes', label: 'Nodes' },
  { to: '/ledger', label: 'Ledger' },
  { to: '/pledges', label: 'Pledges' }
] as const

const LABS_ITEM = { to: '/labs', label: 'Labs' } as const

const LIVE_TEXT: Record<LiveState, { label: string, title: string }> = {
  live: { label: 'Live', title: 'Receiving live updates from the coordinator' },
  connecting: { label: 'Connecting', title: 'Connecting to the coordinator for live updates' },
  reconnecting: { label: 'Reconnecting', title: 'Lost the live connection to the coordinator; retrying' }
}

function LiveIndicator ({ state }: { state: LiveState }): ReactNode {
  const { label, title } = LIVE_TEXT[state]
  return (
    <span className={`live live-${state}`} title={title} data-testid='live-indicator' data-state={state} role='status'>
      <span className='live-dot' aria-hidden='true' />
      <span className='live-label'>{label}</span>
    </span>
  )
}

function initials (name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean)
  return ((parts[0]?.[0] ?? '?') + (parts.length > 1 ? parts.at(-1)![0]! : '')).toUpperCase()
}

/** Signed in: who, as what, and a menu with their places and "Sign out". */
function AccountMenu ({ me }: { me: Me }): ReactNode {
  const [open, setOpen] = useState(false)
  const ref = useRef<HTMLDivElement>(null)
  const { signOut, pending } = useSignOut()
  const pathname = usePathname()
  useEffect(() => { setOpen(false) }, [pathname])
  useEffect(() => {
    if (!open) return
    const onPointer = (event: PointerEvent): void => {
      if (ref.current !== null && !ref.current.contains(event.target as Node)) setOpen(false)
    }
    const onKey = (event: KeyboardEvent): void => { if (event.key === 'Escape') setOpen(false) }
    document.addEventListener('pointerdown', onPointer)
    document.addEventListener('keydown', onKey)
    return () => { document.removeEventListener('pointerdown', onPointer); document.removeEventListener('keydown', onKey) }
  }, [open])
  const role = describeRole(me)
  return (
    <div className='account' ref={ref} data-testid='account-menu' data-roles={me.roles.join(' ')}>
      <button type='button' className='account-button' aria-expanded={open} aria-haspopup='true' onClick={() => { setOpen(!open) }}>
        <span className='avatar' aria-hidden='true'>{initials(me.displayName)}</span>
        <span className='account-text'>
          <span className='account-name' data-testid='account-name'>{me.displayName}</span>
          <span className='account-role' data-testid='account-role'>{role}{me.organizationName !== null ? ` · ${me.organizationName}` : ''}</span>
        </span>
        <ChevronDownIcon />
      </button>
      {open && (
        <div className='account-popover card' role='menu'>
          <div className='account-popover-head'>
            <div className='strong'>{me.displayName}</div>
            <div className='muted small'>{me.email}</div>
            <div className='muted small'>{role}{me.organizationName !== null ? ` · ${me.organizationName}` : ''}</div>
          </div>
          <ul className='plain-list account-links'>
            {userHasRole(me, 'organizer') && <li><Link role='menuitem' to='/runs/new'>Launch a run</Link></li>}
            {userHasRole(me, 'lab_admin') && <li><Link role='menuitem' to='/labs'>Your lab’s tokens and nodes</Link></li>}
            {userHasRole(me, 'funder') && <li><Link role='menuitem' to='/pledges'>Your pledges</Link></li>}
            <li><Link role='menuitem' to='/account' data-testid='to-account'>Password and sessions</Link></li>
          </ul>
          <button
            type='button'
            role='menuitem'
            className='button button-secondary account-signout'
            data-testid='sign-out'
            disabled={pending}
            onClick={() => { void signOut().then(() => { navigate('/runs') }) }}
          >
            {pending ? 'Signing out…' : 'Sign out'}
          </button>
        </div>
      )}
    </div>
  )
}

function AccountArea (): ReactNode {
  const me = useMe()
  const pathname = usePathname()
  if (me.isPending) return <span className='account-placeholder' aria-hidden='true' />
  if (me.data === null || me.data === undefined) {
    const onAuthPage = pathname === '/signin' || pathname === '/signup'
    const next = onAuthPage ? '/runs' : pathname
    return (
      <div className='account-signedout' data-testid='signed-out'>
        <Link className='button button-ghost button-small' to={signInHref(next)} data-testid='nav-signin'>Sign in</Link>
        <Link className='button button-small' to={signInHref(next, 'signup')} data-testid='nav-signup'>Sign up</Link>
      </div>
    )
  }
  return <AccountMenu me={me.data} />
}

export function Shell ({ live, children }: { live: LiveState, children: ReactNode }): ReactNode {
  const me = useMe()
  const items = userHasRole(me.data, 'lab_admin') ? [...NAV_ITEMS, LABS_ITEM] : NAV_ITEMS
  return (
    <div className='app'>
      <a className='skip-link' href='#main'>Skip to content</a>
      <header className='topbar'>
        <div className='container topbar-inner'>
          <Link to='/' className='brand' aria-label='Barnraise home'>
            <Logo />
            <span className='brand-name'>Barnraise</span>
          </Link>
          <nav className='mainnav' aria-label='Main'>
            <ul>
              {items.map((item) => (
                <li key={item.to}><NavLink to={item.to} data-testid={`nav-${item.label.toLowerCase()}`}>{item.label}</NavLink></li>
              ))}
            </ul>
          </nav>
          <div className='topbar-end'>
            <LiveIndicator state={live} />
            <AccountArea />
          </div>
        </div>
      </header>
      <main id='main' className='container main' tabIndex={-1}>
        {children}
      </main>
      <footer className='footer'>
        <div className='container footer-inner'>
          <span>Barnraise · open pretraining on donated compute</span>
          <a href='/healthz'>Coordinator health</a>
        </div>
      </footer>
    </div>
  )
}
