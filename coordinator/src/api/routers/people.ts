import { z } from 'zod'
import { SELF_SERVE_ROLES } from '../../accounts/roles.ts'
import { createInvitation, listInvitations, revokeInvitation } from '../../accounts/invitations.ts'
import { listPeople, setRole } from '../../accounts/grants.ts'
import { protectedProcedure, roleProcedure, router } from '../trpc.ts'

export const peopleRouter = router({
  /** Makes an invitation link: admins invite to any role, lab admins into their own organization. */
  invite: protectedProcedure
    .input(z.object({
      role: z.enum(SELF_SERVE_ROLES),
      organizationId: z.string().uuid().nullable().default(null),
      maxUses: z.number().int().min(1, 'at least 1 use').max(1000, 'at most 1,000 uses').default(1),
      expiresInHours: z.number().positive().max(24 * 90, 'at most 90 days').optional()
    }))
    .mutation(async ({ ctx, input }) => {
      const created = await createInvitation(ctx.db, ctx.user, {
        role: input.role, organizationId: input.organizationId, maxUses: input.maxUses, ...(input.expiresInHours !== undefined ? { expiresInHours: input.expiresInHours } : {})
      })
      return { ...created, path: `/signup?invite=${encodeURIComponent(created.code)}` }
    }),
  /** Invitations the viewer made or manages (never their codes). */
  invitations: protectedProcedure.query(async ({ ctx }) => await listInvitations(ctx.db, ctx.user)),
  revokeInvitation: protectedProcedure.input(z.object({ id: z.string().uuid() })).mutation(async ({ ctx, input }) => {
    await revokeInvitation(ctx.db, ctx.user, input.id)
    return { ok: true as const }
  }),
  /** Every account (admin only). */
  list: roleProcedure('admin').query(async ({ ctx }) => await listPeople(ctx.db)),
  /** Grants or takes away a role, e.g. who may organize (admin only). */
  setRole: roleProcedure('admin')
    .input(z.object({ userId: z.string().uuid(), role: z.enum(SELF_SERVE_ROLES), granted: z.boolean() }))
    .mutation(async ({ ctx, input }) => ({ roles: await setRole(ctx.db, input.userId, input.role, input.granted) }))
})
