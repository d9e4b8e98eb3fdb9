import type { ReactNode } from 'react'
import { formatAbsolute, formatRelative } from '../lib/time.ts'

/** "3 min ago", with the exact time on hover and in the markup. */
export function RelativeTime ({ iso, now, testId }: { iso: string, now: number, testId?: string }): ReactNode {
  return (
    <time dateTime={iso} title={formatAbsolute(iso)} data-testid={testId}>
      {formatRelative(iso, now)}
    </time>
  )
}
