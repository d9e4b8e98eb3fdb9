import { z } from 'zod'
import { authenticate, createSession, deleteSession, signUp } from '../../accounts/accounts.ts'
import { SELF_SERVE_ROLES } from '../../accounts/roles.ts'
import { publicProcedure, router } from '../trpc.ts'

export const signUpInput = z.object({
  email: z.string().trim().email('enter a valid email address').max(200),
  password: z.string().min(10, 'use at least 10 characters').max(200),
  displayName: z.string().trim().min(1, 'tell us your name').max(100),
  role: z.enum(SELF_SERVE_ROLES),
  organization: z.string().trim().max(100).optional()
})

export const authRouter = router({
  /** Who is signed in (null when nobody). */
  me: publicProcedure.query(({ ctx }) => ctx.user),
  /** Creates an account and signs it in; the first account on an install is the admin. */
  signUp: publicProcedure.input(signUpInput).mutation(async ({ ctx, input }) => {
    const user = await signUp(ctx.db, input)
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
