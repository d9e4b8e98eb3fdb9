import { z } from 'zod'
import { TRPCError } from '@trpc/server'
import { createEnrollmentToken, revokeEnrollmentToken, tokenLimitsSchema } from '../../nodes/enrollment-tokens.ts'
import { agentJoinCommand, plainTextSchema } from '@barnraise/protocol'
import { roleProcedure, router } from '../trpc.ts'
import { deviceHours } from '../../ledger/device-hours.ts'
import { servingCandidates, servingChoices, setServingChoices } from '../../nodes/serving-choices.ts'

/** The organization a lab admin manages; admins may name any. */
function organizationOf (user: { organizationId: string | null, roles: string[] }, requested?: string): string {
  if (requested !== undefined && user.roles.includes('admin')) return requested
  if (user.organizationId === null) throw new TRPCError({ code: 'PRECONDITION_FAILED', message: 'your account has no organization; ask an admin to add you to one' })
  return user.organizationId
}

export const labsRouter = router({
  /** The lab admin's organization: its tokens (never the secret), nodes and contribution. */
  overview: roleProcedure('lab_admin').input(z.object({ organizationId: z.string().uuid().optional() }).optional()).query(async ({ ctx, input }) => {
    const orgId = organizationOf(ctx.user!, input?.organizationId)
    const org = await ctx.db.selectFrom('organizations').select(['id', 'name']).where('id', '=', orgId).executeTakeFirst()
    if (org === undefined) throw new TRPCError({ code: 'NOT_FOUND', message: `no organization ${orgId}` })
    const tokens = await ctx.db.selectFrom('enrollment_tokens').select(['id', 'label', 'max_uses', 'used_count', 'expires_at', 'revoked_at', 'created_at'])
      .where('organization_id', '=', orgId).orderBy('created_at', 'desc').execute()
    const contribution = await ctx.db.selectFrom('ledger')
      .select((eb) => [eb.fn.coalesce(eb.fn.sum<number>('tokens'), eb.lit(0)).as('tokens'), eb.fn.coalesce(eb.fn.sum<number>('compute_seconds'), eb.lit(0)).as('computeSeconds'), eb.fn.countAll<number>().as('reports')])
      .where('organization_id', '=', orgId).where('outcome', '=', 'accepted').executeTakeFirstOrThrow()
    // Each node's time counts as GPU-hours or CPU core-hours by what it says it is.
    const perNode = await ctx.db.selectFrom('ledger').select(['node_id', 'executor', 'devices', 'credited_devices', 'credited_cores']).select((eb) => eb.fn.sum<number>('compute_seconds').as('s'))
      .where('organization_id', '=', orgId).where('outcome', '=', 'accepted').groupBy(['node_id', 'executor', 'devices', 'credited_devices', 'credited_cores']).execute()
    const hardware = new Map((await ctx.db.selectFrom('nodes').select(['id', 'hardware']).where('organization_id', '=', orgId).execute()).map((n) => [n.id, n.hardware]))
    let gpuHours = 0
    let cpuCoreHours = 0
    for (const n of perNode) {
      const counted = deviceHours(Number(n.s), n.node_id === null ? null : hardware.get(n.node_id), n.executor, n.credited_devices ?? n.devices, n.credited_cores)
      if (counted.kind === 'gpu') gpuHours += counted.hours
      else cpuCoreHours += counted.hours
    }
    return {
      organization: org,
      multiaddrs: ctx.multiaddrs(),
      tokens: tokens.map((t) => ({
        id: t.id, label: t.label, maxUses: t.max_uses, usedCount: t.used_count,
        expiresAt: t.expires_at?.toISOString() ?? null, revoked: t.revoked_at !== null, createdAt: t.created_at.toISOString()
      })),
      contribution: { tokens: Number(contribution.tokens), computeSeconds: Number(contribution.computeSeconds), gpuHours, cpuCoreHours, reports: Number(contribution.reports) }
    }
  }),
  /** Issues a token; its secret is in this response only. */
  createToken: roleProcedure('lab_admin')
    // Shown on the lab's page beside each token: plain text, as node and organization names are.
    .input(tokenLimitsSchema.extend({ label: plainTextSchema({ max: 100, trim: true }).optional() }))
    .mutation(async ({ ctx, input }) => {
      const orgId = organizationOf(ctx.user!)
      const token = await createEnrollmentToken(ctx.db, { organizationId: orgId, limits: input, label: input.label === undefined || input.label === '' ? null : input.label, createdBy: ctx.user!.id })
      return { id: token.id, token: token.token, joinCommand: agentJoinCommand(ctx.multiaddrs(), token.token) }
    }),
  revokeToken: roleProcedure('lab_admin').input(z.object({ id: z.string().uuid() })).mutation(async ({ ctx, input }) => {
    await revokeEnrollmentToken(ctx.db, input.id, organizationOf(ctx.user!))
    return { ok: true as const }
  }),
  /** Which runs the lab's machines train, and what it could choose. */
  serving: roleProcedure('lab_admin').input(z.object({ organizationId: z.string().uuid().optional() }).optional()).query(async ({ ctx, input }) => {
    const orgId = organizationOf(ctx.user!, input?.organizationId)
    return { choices: await servingChoices(ctx.db, orgId), candidates: await servingCandidates(ctx.db) }
  }),
  /** Sets which runs the lab's machines train: every run, or only the chosen runs and organizers. */
  setServing: roleProcedure('lab_admin')
    .input(z.object({
      organizationId: z.string().uuid().optional(),
      serves: z.enum(['all', 'chosen']),
      runIds: z.array(z.string().uuid()).max(200, 'at most 200 runs'),
      organizerIds: z.array(z.string().uuid()).max(200, 'at most 200 organizers')
    }))
    .mutation(async ({ ctx, input }) => {
      const orgId = organizationOf(ctx.user!, input.organizationId)
      return await setServingChoices(ctx.db, orgId, { serves: input.serves, runIds: input.runIds, organizerIds: input.organizerIds })
    })
})
