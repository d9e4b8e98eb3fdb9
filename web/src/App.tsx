import { useEffect } from 'react'
import type { ReactNode } from 'react'
import { useLiveChanges } from './lib/live.ts'
import { navigate, resolveRoute, usePathname } from './lib/router.tsx'
import type { Route } from './lib/router.tsx'
import { Shell } from './components/Shell.tsx'
import { NodesPage } from './pages/NodesPage.tsx'
import { RunsPage } from './pages/RunsPage.tsx'
import { LedgerPage } from './pages/LedgerPage.tsx'
import { PledgesPage } from './pages/PledgesPage.tsx'
import { NotFoundPage } from './pages/NotFoundPage.tsx'

/**
 * Every page of the dashboard. Later pages slot in here: `/runs/new` (launch form, organizers),
 * `/runs/:runId` (loss curves), `/labs` and `/labs/:orgId` (tokens), `/account`.
 */
const ROUTES: Route[] = [
  { path: '/runs', title: 'Runs', render: () => <RunsPage /> },
  { path: '/nodes', title: 'Nodes', render: () => <NodesPage /> },
  { path: '/ledger', title: 'Ledger', render: () => <LedgerPage /> },
  { path: '/pledges', title: 'Pledges', render: () => <PledgesPage /> }
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
