import type { ReactNode } from 'react'
import { PageHeader } from '../components/PageHeader.tsx'
import { EmptyState } from '../components/States.tsx'
import { LedgerIcon } from '../components/Icons.tsx'

export function LedgerPage (): ReactNode {
  return (
    <>
      <PageHeader title='Ledger' description='Who contributed what, to which run, and when.' />
      <EmptyState icon={<LedgerIcon width='28' height='28' />} title='Coming soon: the contribution ledger' testId='coming-soon'>
        <p>Every report a node makes to a run will be recorded here once the coordinator accepts it:</p>
        <ul className='bullets'>
          <li>tokens trained and compute donated, per node, lab and round;</li>
          <li>each entry signed by the node that made it and chained to the entry before it, so anyone can verify the ledger without trusting the database;</li>
          <li>filters by run, lab and node, and downloads as CSV or JSON.</li>
        </ul>
      </EmptyState>
    </>
  )
}
