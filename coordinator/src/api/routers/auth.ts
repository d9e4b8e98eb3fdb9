import { z } from 'zod'
import { TRPCError } from '@trpc/server'
import { CoordinatorError } from '../../errors.ts'
import { authenticate, createSession, deleteSession, endSessions, hasAdmin, setPassword, signUp } from '../../accounts/accounts.ts'
import { SELF_SERVE_ROLES } from '../../accounts/roles.ts'
import { protectedProcedure, publicProcedure, router } from '../trpc.ts'
import { takeOrRefuse } from '../../limits/api-rates.ts'

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
    takeOrRefuse(ctx.rates.signUps, ctx.clientAddress, 'sign-ups from this address')
    const user = await signUp(ctx.db, input, { setupCode: ctx.setupCode, openOrganizing: ctx.openOrganizing })
    const session = await createSession(ctx.db, user.id)
    ctx.setSessionCookie(session.token, session.expiresAt)
    return user
  }),
  /** Signs in; failed attempts are throttled per account and per address (HTTP 429 with Retry-After). */
  signIn: publicProcedure.input(z.object({ email: z.string().max(200), password: z.string().max(200) })).mutation(async ({ ctx, input }) => {
    const email = input.email.trim().toLowerCase()
    const wait = ctx.signIns.retryAfter(email, ctx.clientAddress)
    if (wait > 0) {
      ctx.setResponseHeader('retry-after', String(wait))
      throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: `too many failed sign-ins; try again in ${wait} s` })
    }
    let userId: string
    try {
      userId = await authenticate(ctx.db, email, input.password)
    } catch (err) {
      if (err instanceof CoordinatorError) ctx.signIns.failed(email, ctx.clientAddress)
      throw err
    }
    ctx.signIns.succeeded(email, ctx.clientAddress)
    const session = await createSession(ctx.db, userId)
    ctx.setSessionCookie(session.token, session.expiresAt)
    return { ok: true as const }
  }),
  /**
   * Changes the signed-in person's password, given the current one (throttled like a sign-in):
   * every session ends, this browser gets a fresh one.
   */
  changePassword: protectedProcedure.input(z.object({ password: z.string().max(200), newPassword: signUpInput.shape.password })).mutation(async ({ ctx, input }) => {
    const email = ctx.user.email
    const wait = ctx.signIns.retryAfter(email, ctx.clientAddress)
    if (wait > 0) {
      ctx.setResponseHeader('retry-after', String(wait))
      throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: `too many failed sign-ins; try again in ${wait} s` })
    }
    try {
      await authenticate(ctx.db, email, input.password)
    } catch (err) {
      if (err instanceof CoordinatorError) {
        ctx.signIns.failed(email, ctx.clientAddress)
        throw new CoordinatorError('ERR_INVALID_INPUT', 'your current password is not right')
      }
      throw err
    }
    await setPassword(ctx.db, { userId: ctx.user.id }, input.newPassword)
    const session = await createSession(ctx.db, ctx.user.id)
    ctx.setSessionCookie(session.token, session.expiresAt)
    return { ok: true as const }
  }),
  /** Ends every session of the signed-in person, this one too (a lost laptop, a shared computer). */
  signOutEverywhere: protectedProcedure.mutation(async ({ ctx }) => {
    const ended = await endSessions(ctx.db, ctx.user.id)
    ctx.clearSessionCookie()
    return { ended }
  }),
  signOut: publicProcedure.mutation(async ({ ctx }) => {
    if (ctx.sessionToken !== undefined) await deleteSession(ctx.db, ctx.sessionToken)
    ctx.clearSessionCookie()
    return { ok: true as const }
  })
})
