import type { ReactNode } from 'react'
import { Link } from '../lib/router.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { EmptyState } from '../components/States.tsx'

export function NotFoundPage (): ReactNode {
  return (
    <>
      <PageHeader title='Page not found' />
      <EmptyState title='Nothing lives at this address' testId='not-found'>
        <p>The link may be old or mistyped. Try <Link to='/runs'>Runs</Link> or <Link to='/nodes'>Nodes</Link>.</p>
      </EmptyState>
    </>
  )
}
