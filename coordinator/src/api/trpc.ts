import { initTRPC, TRPCError } from '@trpc/server'
import type { ApiContext } from './context.ts'
import { CoordinatorError } from '../errors.ts'

const t = initTRPC.context<ApiContext>().create({
  errorFormatter ({ shape, error }) {
    const cause = error.cause
    return {
      ...shape,
      data: { ...shape.data, appCode: cause instanceof CoordinatorError ? cause.code : null }
    }
  }
})

const CODE_FOR: Record<CoordinatorError['code'], TRPCError['code']> = {
  ERR_INVALID_TOKEN: 'BAD_REQUEST',
  ERR_NODE_REVOKED: 'FORBIDDEN',
  ERR_NOT_ENROLLED: 'FORBIDDEN',
  ERR_NOT_FOUND: 'NOT_FOUND',
  ERR_CONFLICT: 'CONFLICT',
  ERR_INVALID_INPUT: 'BAD_REQUEST'
}

/** Domain errors become tRPC errors with a matching HTTP status and the message intact. */
const mapDomainErrors = t.middleware(async ({ next }) => {
  const result = await next()
  if (!result.ok && result.error.cause instanceof CoordinatorError) {
    const cause = result.error.cause
    throw new TRPCError({ code: CODE_FOR[cause.code], message: cause.message, cause })
  }
  return result
})

export const router = t.router
export const publicProcedure = t.procedure.use(mapDomainErrors)
