import { z } from 'zod'
import { TRPCError } from '@trpc/server'
import { CoordinatorError } from '../../errors.ts'
import {
  EmailTakenError, WrongCredentialsError, authenticate, createSession, deleteSession, displayNameProblem, endSessions, hasAdmin, setPassword, signUp, userForSession
} from '../../accounts/accounts.ts'
import type { SessionUser } from '../../accounts/accounts.ts'
import { SELF_SERVE_ROLES } from '../../accounts/roles.ts'
import { organizationNameProblem } from '../../nodes/organizations.ts'
import { protectedProcedure, publicProcedure, router } from '../trpc.ts'
import type { ApiContext } from '../context.ts'
import { takeOrRefuseAll } from '../../limits/api-rates.ts'
import type { WindowLimiter } from '../../limits/window-limiter.ts'
import { networkOf } from '../../http/address-key.ts'

export const signUpInput = z.object({
  email: z.string().trim().email('enter a valid email address').max(200),
  password: z.string().min(10, 'use at least 10 characters').max(200),
  // Shown on public pages beside pledges and runs: plain text, as node text is.
  displayName: z.string().trim().min(1, 'tell us your name').max(100).superRefine((name, issues) => {
    const problem = displayNameProblem(name)
    if (problem !== undefined) issues.addIssue({ code: 'custom', message: problem, input: name })
  }),
  role: z.enum(SELF_SERVE_ROLES),
  organization: z.string().trim().max(100).superRefine((name, issues) => {
    // Empty is "no organization"; signUp decides whether the role needs one.
    const problem = name === '' ? undefined : organizationNameProblem(name)
    if (problem !== undefined) issues.addIssue({ code: 'custom', message: problem, input: name })
  }).optional(),
  invite: z.string().trim().max(100).optional(),
  setupCode: z.string().trim().max(100).optional()
})

/**
 * Checks a password as sign-in does, throttled: refused (429 with Retry-After) while the
 * sign-in throttle holds this account back at this address, and counted as pending from before
 * the check starts (a burst sent at once meets the limits as a sequence would). A wrong one
 * counts as a failed sign-in for (email, address); a right one, where `signsIn`, as a good
 * sign-in. A check that could not run (ERR_BUSY: the password checker's line is full) is not
 * the person's failure, so it is not counted: a flood of other sign-ins would otherwise lock
 * out people typing the right password. `familiar`: the account signed in from this address
 * lately, so its checks may use the checker's share kept for such.
 */
async function checkPassword (ctx: ApiContext, email: string, password: string, signsIn: boolean): Promise<{ userId: string, familiar: boolean }> {
  const started = ctx.signIns.begin(email, ctx.clientAddress)
  if ('retryAfter' in started) {
    ctx.setResponseHeader('retry-after', String(started.retryAfter))
    throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: `too many sign-in attempts; try again in ${started.retryAfter} s` })
  }
  const { attempt } = started
  try {
    const userId = await authenticate(ctx.db, email, password, attempt.familiar ? { familiar: email } : {})
    if (signsIn) attempt.succeeded()
    return { userId, familiar: attempt.familiar }
  } catch (err) {
    if (err instanceof WrongCredentialsError) attempt.failed()
    throw err
  } finally {
    attempt.end()
  }
}

/** Signs `userId` in on this browser (a fresh session cookie). */
async function startSession (ctx: ApiContext, userId: string): Promise<{ token: string }> {
  const session = await createSession(ctx.db, userId)
  ctx.setSessionCookie(session.token, session.expiresAt)
  return session
}

export const authRouter = router({
  /** Who is signed in (null when nobody). */
  me: publicProcedure.query(({ ctx }) => ctx.user),
  /** What sign-up needs on this install: the setup code (no admin yet), or an invitation to organize. */
  setupStatus: publicProcedure.query(async ({ ctx }) => ({ needsAdmin: !await hasAdmin(ctx.db), openOrganizing: ctx.openOrganizing })),
  /**
   * Creates an account and signs it in (see `signUp` for who may take which role). An email that
   * has an account is answered as a sign-in with that password: the right one signs its owner in
   * (the answer is then that account), a wrong one is a failed sign-in, throttled like one and
   * refused with a message that says no more than a wrong password does. Probing which emails
   * have accounts this way costs the same guesses as probing passwords.
   */
  signUp: publicProcedure.input(signUpInput).mutation(async ({ ctx, input }): Promise<SessionUser> => {
    const email = input.email.toLowerCase()
    const network = networkOf(ctx.clientAddress)
    takeOrRefuseAll([
      [ctx.rates.signUps, ctx.clientAddress, 'sign-ups from this address'],
      // An IPv4 address is its own network: there the per-address limit is the one that binds.
      ...(network !== ctx.clientAddress ? [[ctx.rates.signUpNetworks, network, 'sign-ups from this network'] as [WindowLimiter, string, string]] : [])
    ])
    let user: SessionUser
    try {
      user = await signUp(ctx.db, input, { setupCode: ctx.setupCode, openOrganizing: ctx.openOrganizing })
    } catch (err) {
      if (!(err instanceof EmailTakenError)) throw err
      // Throttled only here, as a sign-in: failed sign-ins sprayed at an email nobody has yet
      // must not keep the person invited with it from signing up.
      let userId: string
      try {
        userId = (await checkPassword(ctx, email, input.password, true)).userId
      } catch (checkErr) {
        throw checkErr instanceof WrongCredentialsError ? err : checkErr
      }
      const session = await startSession(ctx, userId)
      const owner = await userForSession(ctx.db, session.token)
      if (owner === null) throw new CoordinatorError('ERR_NOT_FOUND', 'that account was removed while signing in; try again')
      return owner
    }
    // The new account's address is familiar to it from now on.
    ctx.signIns.succeeded(email, ctx.clientAddress)
    await startSession(ctx, user.id)
    return user
  }),
  /** Signs in; failed attempts are throttled per account and per address (HTTP 429 with Retry-After). */
  signIn: publicProcedure.input(z.object({ email: z.string().max(200), password: z.string().max(200) })).mutation(async ({ ctx, input }) => {
    const email = input.email.trim().toLowerCase()
    const { userId } = await checkPassword(ctx, email, input.password, true)
    await startSession(ctx, userId)
    return { ok: true as const }
  }),
  /**
   * Changes the signed-in person's password, given the current one (throttled like a sign-in):
   * every session ends, this browser gets a fresh one.
   */
  changePassword: protectedProcedure.input(z.object({ password: z.string().max(200), newPassword: signUpInput.shape.password })).mutation(async ({ ctx, input }) => {
    const email = ctx.user.email
    let familiar: boolean
    try {
      familiar = (await checkPassword(ctx, email, input.password, false)).familiar
    } catch (err) {
      if (err instanceof WrongCredentialsError) throw new CoordinatorError('ERR_INVALID_INPUT', 'your current password is not right')
      throw err
    }
    await setPassword(ctx.db, { userId: ctx.user.id }, input.newPassword, familiar ? { familiar: email } : {})
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
