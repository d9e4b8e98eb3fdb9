import type { SessionUser } from '../accounts/accounts.ts'

/**
 * Who may steer a run (start, pause, resume, stop): an admin, or the organizer who owns it.
 * A run without an owner (made before runs had one) is the admin's alone.
 */
export function maySteerRun (user: Pick<SessionUser, 'id' | 'roles'> | null, ownerId: string | null): boolean {
  if (user === null) return false
  if (user.roles.includes('admin')) return true
  return ownerId !== null && ownerId === user.id && user.roles.includes('organizer')
}
