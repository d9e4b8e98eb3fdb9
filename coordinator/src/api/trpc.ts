import { initTRPC, TRPCError } from '@trpc/server'
import type { ApiContext } from './context.ts'
import { CoordinatorError, RateLimitedError } from '../errors.ts'
import { hasRole } from '../accounts/roles.ts'
import type { Role } from '../accounts/roles.ts'
import { RunSpecError } from '../runs/runs.ts'

const t = initTRPC.context<ApiContext>().create({
  // Never send stack traces to clients, whatever NODE_ENV says.
  isDev: false,
  // A comment every 20 s keeps a quiet live stream from being closed as idle (http/server.ts).
  sse: { ping: { enabled: true, intervalMs: 20_000 } },
  errorFormatter ({ shape, error }) {
    const cause = error.cause
    // An error no domain code names is a fault here, not the caller's: its text (a database's
    // message, a library's) is for the log (server.ts logs it), not for whoever caused it.
    const hidden = error.code === 'INTERNAL_SERVER_ERROR' && !(cause instanceof CoordinatorError) && !(cause instanceof RunSpecError)
    return {
      ...shape,
      message: hidden ? 'internal error; the coordinator logged what went wrong' : shape.message,
      data: {
        ...shape.data,
        appCode: cause instanceof CoordinatorError ? cause.code : null,
        // One message per bad field, for forms to show inline.
        fields: cause instanceof RunSpecError ? cause.fields : null
      }
    }
  }
})

const CODE_FOR: Record<CoordinatorError['code'], TRPCError['code']> = {
  ERR_INVALID_TOKEN: 'BAD_REQUEST',
  ERR_NODE_REVOKED: 'FORBIDDEN',
  ERR_NOT_ENROLLED: 'FORBIDDEN',
  ERR_NOT_FOUND: 'NOT_FOUND',
  ERR_CONFLICT: 'CONFLICT',
  ERR_INVALID_INPUT: 'BAD_REQUEST',
  ERR_FORBIDDEN: 'FORBIDDEN',
  ERR_SETUP_REQUIRED: 'PRECONDITION_FAILED',
  ERR_INVALID_SETUP_CODE: 'BAD_REQUEST',
  ERR_NAME_TAKEN: 'CONFLICT',
  ERR_EMAIL_TAKEN: 'CONFLICT',
  ERR_BUSY: 'TOO_MANY_REQUESTS',
  ERR_RATE_LIMITED: 'TOO_MANY_REQUESTS',
  ERR_QUOTA_EXCEEDED: 'FORBIDDEN'
}

/** Domain errors become tRPC errors with a matching HTTP status and the message intact. */
const mapDomainErrors = t.middleware(async ({ ctx, next }) => {
  const result = await next()
  if (!result.ok && result.error.cause instanceof CoordinatorError) {
    const cause = result.error.cause
    if (cause instanceof RateLimitedError) ctx.setResponseHeader('retry-after', String(cause.retryAfterS))
    throw new TRPCError({ code: CODE_FOR[cause.code], message: cause.message, cause })
  }
  return result
})

/**
 * Fields that never reach a Postgres text column, so may hold NUL: a password (hashed) and an
 * uploaded file's text (tokenized into shards; scraped corpora have stray NULs).
 */
const NUL_ALLOWED = new Set(['password', 'text'])

/**
 * True when a string anywhere in `value` holds U+0000, which Postgres text cannot store. Keys
 * are not looked at and depth stops at 32: every input's zod schema is flat and strict, so
 * neither reaches a query.
 */
function holdsNul (value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000')
  if (depth > 32 || value === null || typeof value !== 'object') return false
  if (Array.isArray(value)) return value.some((v) => holdsNul(v, depth + 1))
  return Object.entries(value).some(([k, v]) => !NUL_ALLOWED.has(k) && holdsNul(v, depth + 1))
}

/** Input with a NUL character is refused here, as the caller's error, before any check or query sees it. */
const refuseNul = t.middleware(async ({ next, getRawInput }) => {
  if (holdsNul(await getRawInput())) throw new TRPCError({ code: 'BAD_REQUEST', message: 'the input holds a NUL character (U+0000); text may not contain it' })
  return await next()
})

export const router = t.router
export const publicProcedure = t.procedure.use(refuseNul).use(mapDomainErrors)

/** Any signed-in person. */
export const protectedProcedure = publicProcedure.use(async ({ ctx, next }) => {
  if (ctx.user === null) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'sign in first' })
  return await next({ ctx: { ...ctx, user: ctx.user } })
})

/** A signed-in person with `role` (admins pass every role check). */
export function roleProcedure (role: Role) {
  return protectedProcedure.use(async ({ ctx, next }) => {
    if (!hasRole(ctx.user.roles, role)) {
      throw new TRPCError({ code: 'FORBIDDEN', message: `this needs the ${role.replace('_', ' ')} role` })
    }
    return await next()
  })
}
