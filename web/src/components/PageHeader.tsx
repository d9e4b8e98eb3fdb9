import type { ReactNode } from 'react'

export function PageHeader ({ title, description, actions }: { title: string, description?: ReactNode, actions?: ReactNode }): ReactNode {
  return (
    <header className='page-header'>
      <div className='page-heading'>
        <h1>{title}</h1>
        {description !== undefined && <p className='page-description'>{description}</p>}
      </div>
      {actions !== undefined && <div className='page-actions'>{actions}</div>}
    </header>
  )
}
