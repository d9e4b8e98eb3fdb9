import type { ReactNode } from 'react'
import { Link, NavLink } from '../lib/router.tsx'
import type { LiveState } from '../lib/live.ts'
import { Logo } from './Icons.tsx'

/** The main places, in the order a newcomer meets them. Later: Labs, Account. */
export const NAV_ITEMS = [
  { to: '/runs', label: 'Runs' },
  { to: '/nodes', label: 'Nodes' },
  { to: '/ledger', label: 'Ledger' },
  { to: '/pledges', label: 'Pledges' }
] as const

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
      {label}
    </span>
  )
}

export function Shell ({ live, children }: { live: LiveState, children: ReactNode }): ReactNode {
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
              {NAV_ITEMS.map((item) => (
                <li key={item.to}><NavLink to={item.to} data-testid={`nav-${item.label.toLowerCase()}`}>{item.label}</NavLink></li>
              ))}
            </ul>
          </nav>
          <div className='topbar-end'>
            <LiveIndicator state={live} />
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
