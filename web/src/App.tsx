import { Suspense, lazy, useEffect } from 'react'
import type { ReactNode } from 'react'
import { useLiveChanges } from './lib/live.ts'
import { navigate, resolveRoute, usePathname } from './lib/router.tsx'
import type { Route } from './lib/router.tsx'
import { Shell } from './components/Shell.tsx'
import { NodesPage } from './pages/NodesPage.tsx'
import { RunsPage } from './pages/RunsPage.tsx'
import { RunPage } from './pages/run/RunPage.tsx'
import { LedgerPage } from './pages/LedgerPage.tsx'
import { PledgesPage } from './pages/PledgesPage.tsx'
import { PledgeStatementPage } from './pages/PledgeStatementPage.tsx'
import { LabsPage } from './pages/LabsPage.tsx'
import { SignInPage, SignUpPage } from './pages/AuthPages.tsx'
import { NotFoundPage } from './pages/NotFoundPage.tsx'
import { AccountPage } from './pages/AccountPage.tsx'
import { LoadingRows } from './components/States.tsx'

// The launch form carries the run spec schema (zod); load it when someone opens it.
const NewRunPage = lazy(async () => await import('./pages/NewRunPage.tsx').then((m) => ({ default: m.NewRunPage })))

/** Every page of the dashboard; the first match wins, so `/runs/new` precedes `/runs/:runId`. */
const ROUTES: Route[] = [
  { path: '/runs', title: 'Runs', render: () => <RunsPage /> },
  { path: '/runs/new', title: 'Launch a run', render: () => <Suspense fallback={<LoadingRows label='Loading the launch form…' />}><NewRunPage /></Suspense> },
  { path: '/runs/:runId', title: 'Run', render: (p) => <RunPage key={p.runId} runId={p.runId!} /> },
  { path: '/nodes', title: 'Nodes', render: () => <NodesPage /> },
  { path: '/ledger', title: 'Ledger', render: () => <LedgerPage /> },
  { path: '/ledger/:runId', title: 'Ledger', render: (p) => <LedgerPage runId={p.runId!} /> },
  { path: '/pledges', title: 'Pledges', render: () => <PledgesPage /> },
  { path: '/pledges/:pledgeId', title: 'Pledge statement', render: (p) => <PledgeStatementPage key={p.pledgeId} pledgeId={p.pledgeId!} /> },
  { path: '/labs', title: 'Labs', render: () => <LabsPage /> },
  { path: '/account', title: 'Your account', render: () => <AccountPage /> },
  { path: '/signin', title: 'Sign in', render: () => <SignInPage /> },
  { path: '/signup', title: 'Sign up', render: () => <SignUpPage /> }
]

const HOME = '/runs'

export function App (): ReactNode {
  const pathname = usePathname()
  const live = useLiveChanges()
  const match = resolveRoute(ROUTES, pathname)

  useEffect(() => {
    if (pathname === '/' || pathname === '/index.html') navigate(HOME, { replace: true })
  }, [pathname])

  const title = match?.route.title ?? 'Not found'
  useEffect(() => {
    document.title = `${title} · Barnraise`
  }, [title])

  return (
    <Shell live={live}>
      {match !== null
        ? match.route.render(match.params)
        : pathname === '/' || pathname === '/index.html' ? null : <NotFoundPage />}
    </Shell>
  )
}
