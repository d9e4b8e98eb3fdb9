import type { RunStatus } from '../db/schema.ts'

/** What an organizer can do to a run. */
export type RunAction = 'start' | 'pause' | 'resume' | 'stop'

const TRANSITIONS: Record<RunAction, { from: RunStatus[], to: RunStatus }> = {
  start: { from: ['draft'], to: 'running' },
  pause: { from: ['running'], to: 'paused' },
  resume: { from: ['paused'], to: 'running' },
  stop: { from: ['draft', 'running', 'paused'], to: 'completed' }
}

/** The status after `action`, or undefined when the action makes no sense from `status`. */
export function nextStatus (status: RunStatus, action: RunAction): RunStatus | undefined {
  const t = TRANSITIONS[action]
  return t.from.includes(status) ? t.to : undefined
}

/** The actions that make sense from `status`, in the order the dashboard shows them. */
export function allowedActions (status: RunStatus): RunAction[] {
  return (['start', 'pause', 'resume', 'stop'] as const).filter((action) => nextStatus(status, action) !== undefined)
}
