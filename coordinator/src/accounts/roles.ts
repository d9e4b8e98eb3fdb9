/** What a person may do. `admin` (the first account) may do everything. */
export const ROLES = ['admin', 'organizer', 'lab_admin', 'funder'] as const
export type Role = typeof ROLES[number]

/** Roles a person can pick at sign-up; admin is only ever the first account. */
export const SELF_SERVE_ROLES = ['organizer', 'lab_admin', 'funder'] as const
export type SelfServeRole = typeof SELF_SERVE_ROLES[number]

/** True when the roles include `needed` (admin counts as every role). */
export function hasRole (roles: readonly string[], needed: Role): boolean {
  return roles.includes('admin') || roles.includes(needed)
}
