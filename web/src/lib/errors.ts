import { TRPCClientError } from '@trpc/client'

/** One problem with one form field, as the API reports it (`recipe.seqLen`, `email`, …). */
export interface FieldError { field: string, message: string }

interface ErrorData { code?: string, appCode?: string | null, fields?: FieldError[] | null }

function dataOf (error: unknown): ErrorData | undefined {
  if (error instanceof TRPCClientError) return (error as TRPCClientError<never>).data as ErrorData | undefined
  return undefined
}

interface ZodIssueJson { path?: Array<string | number>, message?: string, code?: string, origin?: string, minimum?: number, maximum?: number, inclusive?: boolean, expected?: string }

/**
 * An issue's message in words a person can act on. A schema's own message is kept; zod's
 * generic ones ("Too big: expected string to have <=200 characters") are what a form field
 * would otherwise show verbatim.
 */
function plainIssueMessage (issue: ZodIssueJson): string {
  const message = issue.message ?? 'invalid value'
  if (!/^(Too small|Too big|Invalid input)/.test(message)) return message
  const text = issue.origin === 'string'
  const bound = (n: number | undefined): string => text ? `${String(n)} character${n === 1 ? '' : 's'}` : String(n)
  if (issue.code === 'too_big') return text || issue.inclusive !== false ? `use at most ${bound(issue.maximum)}` : `must be less than ${String(issue.maximum)}`
  if (issue.code === 'too_small') return text || issue.inclusive !== false ? `use at least ${bound(issue.minimum)}` : `must be more than ${String(issue.minimum)}`
  if (issue.code === 'invalid_type') return issue.expected === 'int' ? 'enter a whole number' : issue.expected === 'number' ? 'enter a number' : 'enter a value'
  return message
}

/** tRPC reports input that failed its zod schema as the issues' JSON; unpack it into fields. */
function zodIssues (error: unknown): FieldError[] | null {
  if (!(error instanceof Error)) return null
  const text = error.message.trim()
  if (!text.startsWith('[')) return null
  try {
    const issues = JSON.parse(text) as ZodIssueJson[]
    if (!Array.isArray(issues)) return null
    return issues.map((i) => ({ field: (i.path ?? []).join('.'), message: plainIssueMessage(i) }))
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
