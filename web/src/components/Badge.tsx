import type { ReactNode } from 'react'
import { capitalize } from '../lib/format.ts'

export type Tone = 'neutral' | 'success' | 'info' | 'warning' | 'danger'

interface BadgeProps {
  tone: Tone
  children: ReactNode
  /** Animate the dot: something is happening right now. */
  pulse?: boolean
  title?: string
  'data-testid'?: string
  'data-status'?: string
  'data-online'?: string
}

/** A small status pill with a colored dot; color is never the only signal (the label is). */
export function Badge ({ tone, children, pulse = false, ...rest }: BadgeProps): ReactNode {
  return (
    <span className={`badge badge-${tone}`} {...rest}>
      <span className={pulse ? 'badge-dot pulse' : 'badge-dot'} aria-hidden='true' />
      {children}
    </span>
  )
}

/** Node statuses as the coordinator reports them: offline, idle, training, uploading, … */
export function NodeStatusBadge ({ status, online, revoked }: { status: string, online: boolean, revoked: boolean }): ReactNode {
  let tone: Tone = 'success'
  let label: string
  let title: string
  if (revoked) {
    tone = 'danger'; label = 'Revoked'; title = 'Revoked by its organization; it can no longer take work'
  } else if (!online || status === 'offline') {
    tone = 'neutral'; label = 'Offline'; title = 'Not connected to the coordinator'
  } else if (status === 'idle') {
    label = 'Online · idle'; title = 'Connected and waiting for work'
  } else {
    tone = 'info'; label = capitalize(status); title = `Connected and ${status}`
  }
  return (
    <Badge
      tone={tone}
      pulse={tone === 'info'}
      title={title}
      data-testid='node-status'
      data-status={revoked ? 'revoked' : online ? status : 'offline'}
      data-online={String(online && !revoked)}
    >
      {label}
    </Badge>
  )
}

const RUN_TONES: Record<string, Tone> = {
  draft: 'neutral',
  funding: 'warning',
  running: 'info',
  paused: 'warning',
  completed: 'success',
  failed: 'danger'
}

export function RunStatusBadge ({ status }: { status: string }): ReactNode {
  return (
    <Badge tone={RUN_TONES[status] ?? 'neutral'} pulse={status === 'running'} data-testid='run-status' data-status={status}>
      {capitalize(status)}
    </Badge>
  )
}
