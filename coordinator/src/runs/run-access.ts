import type { SessionUser } from '../accounts/accounts.ts'
import { hasRole } from '../accounts/roles.ts'

/**
 * Who may steer a run (start, pause, resume, stop): an admin, or an organizer who created it.
 * A run with no recorded creator (made through the operator's CLI) is any organizer's.
 */
export function maySteerRun (user: SessionUser | null, createdBy: string | null): boolean {
  if (user === null) return false
  if (user.roles.includes('admin')) return true
  return hasRole(user.roles, 'organizer') && (createdBy === null || createdBy === user.id)
}
