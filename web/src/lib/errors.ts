import { TRPCClientError } from '@trpc/client'

/** One problem with one form field, as the API reports it (`recipe.seqLen`, `email`, …). */
export interface FieldError { field: string, message: string }

interface ErrorData { code?: string, appCode?: string | null, fields?: FieldError[] | null }

function dataOf (error: unknown): ErrorData | undefined {
  if (error instanceof TRPCClientError) return (error as TRPCClientError<never>).data as ErrorData | undefined
  return undefined
}

/** tRPC reports input that failed its zod schema as the issues' JSON; unpack it into fields. */
function zodIssues (error: unknown): FieldError[] | null {
  if (!(error instanceof Error)) return null
  const text = error.message.trim()
  if (!text.startsWith('[')) return null
  try {
    const issues = JSON.parse(text) as Array<{ path?: Array<string | number>, message?: string }>
    if (!Array.isArray(issues)) return null
    return issues.map((i) => ({ field: (i.path ?? []).join('.'), message: i.message ?? 'invalid value' }))
  } catch {
    return null
  }
}

/** The error's code ('UNAUTHORIZED', 'FORBIDDEN', 'BAD_REQUEST', 'CONFLICT', …) or null. */
export function apiErrorCode (error: unknown): string | null {
  return dataOf(error)?.code ?? null
}

/** The coordinator's own error code (`ERR_NAME_TAKEN`, …) when the refusal came from its domain rules. */
export function apiErrorAppCode (error: unknown): string | null {
  return dataOf(error)?.appCode ?? null
}

/** Field-by-field problems: the server's run spec errors, or a rejected tRPC input. */
export function apiErrorFields (error: unknown): FieldError[] {
  return dataOf(error)?.fields ?? zodIssues(error) ?? []
}

/** A sentence a person can act on. */
export function apiErrorMessage (error: unknown): string {
  const fields = zodIssues(error)
  if (fields !== null && fields.length > 0) return fields.map((f) => (f.field === '' ? f.message : `${f.field}: ${f.message}`)).join('; ')
  const message = error instanceof Error ? error.message : String(error)
  if (/failed to fetch|networkerror|load failed|fetch failed/i.test(message)) return 'Could not reach the coordinator. Check your connection and try again.'
  return message.charAt(0).toUpperCase() + message.slice(1)
}
