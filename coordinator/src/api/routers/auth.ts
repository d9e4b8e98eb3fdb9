import { z } from 'zod'
import { authenticate, createSession, deleteSession, hasAdmin, signUp } from '../../accounts/accounts.ts'
import { SELF_SERVE_ROLES } from '../../accounts/roles.ts'
import { publicProcedure, router } from '../trpc.ts'

export const signUpInput = z.object({
  email: z.string().trim().email('enter a valid email address').max(200),
  password: z.string().min(10, 'use at least 10 characters').max(200),
  displayName: z.string().trim().min(1, 'tell us your name').max(100),
  role: z.enum(SELF_SERVE_ROLES),
  organization: z.string().trim().max(100).optional(),
  invite: z.string().trim().max(100).optional(),
  setupCode: z.string().trim().max(100).optional()
})

export const authRouter = router({
  /** Who is signed in (null when nobody). */
  me: publicProcedure.query(({ ctx }) => ctx.user),
  /** What sign-up needs on this install: the setup code (no admin yet), or an invitation to organize. */
  setupStatus: publicProcedure.query(async ({ ctx }) => ({ needsAdmin: !await hasAdmin(ctx.db), openOrganizing: ctx.openOrganizing })),
  /** Creates an account and signs it in (see `signUp` for who may take which role). */
  signUp: publicProcedure.input(signUpInput).mutation(async ({ ctx, input }) => {
    const user = await signUp(ctx.db, input, { setupCode: ctx.setupCode, openOrganizing: ctx.openOrganizing })
    const session = await createSession(ctx.db, user.id)
    ctx.setSessionCookie(session.token, session.expiresAt)
    return user
  }),
  signIn: publicProcedure.input(z.object({ email: z.string().max(200), password: z.string().max(200) })).mutation(async ({ ctx, input }) => {
    const userId = await authenticate(ctx.db, input.email, input.password)
    const session = await createSession(ctx.db, userId)
    ctx.setSessionCookie(session.token, session.expiresAt)
    return { ok: true as const }
  }),
  signOut: publicProcedure.mutation(async ({ ctx }) => {
    if (ctx.sessionToken !== undefined) await deleteSession(ctx.db, ctx.sessionToken)
    ctx.clearSessionCookie()
    return { ok: true as const }
  })
})
