import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import type { UseQueryResult } from '@tanstack/react-query'
import { useTRPC } from './trpc.ts'
import type { RouterOutputs } from './trpc.ts'

export type Me = NonNullable<RouterOutputs['auth']['me']>
export type Role = Me['roles'][number]
export type SelfServeRole = Exclude<Role, 'admin'>

export const ROLE_LABELS: Record<Role, string> = {
  admin: 'Admin',
  organizer: 'Organizer',
  lab_admin: 'Lab admin',
  funder: 'Funder'
}

/** What each self-serve role is for, in the words of the sign-up page. */
export const ROLE_CHOICES: Array<{ role: SelfServeRole, title: string, description: string }> = [
  { role: 'organizer', title: 'Launch and steer training runs', description: 'Pick a model and data, start, pause and stop runs, publish checkpoints.' },
  { role: 'lab_admin', title: 'Donate compute from my lab’s machines', description: 'Enroll your organization’s machines with tokens and follow what they contribute.' },
  { role: 'funder', title: 'Fund runs', description: 'Pledge money or GPU-hours to runs and check delivery against the ledger.' }
]

/** True when the person may act as `role` (admins may act as every role). */
export function userHasRole (user: Me | null | undefined, role: Role): boolean {
  if (user === null || user === undefined) return false
  return user.roles.includes('admin') || user.roles.includes(role)
}

/** "Admin", "Lab admin · Example Lab", … */
export function describeRole (user: Me): string {
  const role = user.roles.includes('admin') ? 'admin' : user.roles[0] ?? 'organizer'
  return ROLE_LABELS[role]
}

/** Who is signed in: `data` is null for visitors, undefined while loading. */
export function useMe (): UseQueryResult<Me | null> {
  const trpc = useTRPC()
  return useQuery({ ...trpc.auth.me.queryOptions(), staleTime: 60_000 }) as UseQueryResult<Me | null>
}

/** Signs out, then refetches everything (what a page shows may depend on who is signed in). */
export function useSignOut (): { signOut: () => Promise<void>, pending: boolean } {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const mutation = useMutation(trpc.auth.signOut.mutationOptions())
  return {
    pending: mutation.isPending,
    signOut: async () => {
      await mutation.mutateAsync()
      queryClient.setQueryData(trpc.auth.me.queryKey(), null)
      queryClient.removeQueries({ queryKey: [['labs']] })
      queryClient.removeQueries({ queryKey: [['pledges', 'mine']] })
      await queryClient.invalidateQueries()
    }
  }
}

/** Where a role feels at home after signing in. */
export function homeFor (user: Me): string {
  if (user.roles.includes('admin')) return '/runs'
  if (user.roles.includes('lab_admin')) return '/labs'
  if (user.roles.includes('funder')) return '/pledges'
  return '/runs'
}
