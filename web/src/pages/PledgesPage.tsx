import type { ReactNode } from 'react'
import { PageHeader } from '../components/PageHeader.tsx'
import { EmptyState } from '../components/States.tsx'
import { HandshakeIcon } from '../components/Icons.tsx'

export function PledgesPage (): ReactNode {
  return (
    <>
      <PageHeader title='Pledges' description='Commitments of compute and funding to the runs people want to see trained.' />
      <EmptyState icon={<HandshakeIcon width='28' height='28' />} title='Coming soon: pledges' testId='coming-soon'>
        <p>Funders and labs will be able to back a run before and while it trains:</p>
        <ul className='bullets'>
          <li>pledge GPU hours or funding to a run that is still gathering support;</li>
          <li>follow how each pledge turns into delivered compute, checked against the ledger;</li>
          <li>see which runs are close to their goal and which need help.</li>
        </ul>
      </EmptyState>
    </>
  )
}
