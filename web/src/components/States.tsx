import type { ReactNode } from 'react'
import { AlertIcon } from './Icons.tsx'

/** What a page shows when there is nothing (yet): say why, and what to do about it. */
export function EmptyState ({ icon, title, children, testId }: { icon?: ReactNode, title: string, children?: ReactNode, testId?: string }): ReactNode {
  return (
    <section className='card empty-state' data-testid={testId} aria-label={title}>
      {icon !== undefined && <div className='empty-icon'>{icon}</div>}
      <h2 className='empty-title'>{title}</h2>
      <div className='empty-body'>{children}</div>
    </section>
  )
}

/** Turns fetch failures into words a person can act on. */
export function describeError (error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  if (/failed to fetch|networkerror|load failed|fetch failed|ECONNREFUSED|Unexpected end of JSON|Unexpected token/i.test(message)) {
    return 'The dashboard could not reach the coordinator’s API. Check that the coordinator is running and reachable from this browser.'
  }
  return message
}

export function ErrorState ({ title, error, onRetry, retrying = false }: { title: string, error: unknown, onRetry?: () => void, retrying?: boolean }): ReactNode {
  const detail = error instanceof Error ? error.message : String(error)
  return (
    <section className='card error-state' role='alert' data-testid='error-state'>
      <div className='error-icon'><AlertIcon /></div>
      <div className='error-text'>
        <h2 className='error-title'>{title}</h2>
        <p>{describeError(error)}</p>
        {detail !== describeError(error) && <p className='muted small wrap-code'>Details: <code>{detail}</code></p>}
      </div>
      {onRetry !== undefined && (
        <button type='button' className='button' onClick={onRetry} disabled={retrying}>
          {retrying ? 'Retrying…' : 'Try again'}
        </button>
      )}
    </section>
  )
}

/** A thin banner above data that may be stale because the last refresh failed. */
export function StaleBanner ({ error }: { error: unknown }): ReactNode {
  return (
    <div className='banner banner-warning' role='status' data-testid='stale-banner'>
      <AlertIcon width='18' height='18' />
      <span>Showing the last data we received. {describeError(error)}</span>
    </div>
  )
}

export function LoadingRows ({ label, rows = 3 }: { label: string, rows?: number }): ReactNode {
  return (
    <div className='card loading' aria-busy='true' aria-live='polite'>
      <span className='visually-hidden'>{label}</span>
      {Array.from({ length: rows }, (_, i) => <div key={i} className='skeleton-row' />)}
    </div>
  )
}
