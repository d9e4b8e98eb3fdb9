import { apiErrorAppCode, apiErrorCode, apiErrorFields, apiErrorMessage } from './errors.ts'

/** Which form field a refusal code belongs to (the coordinator's `ERR_…` or tRPC's `CONFLICT`, …), and optionally what to say there. */
export type CodeFields = Record<string, string | { field: string, message: string }>

/**
 * Per-field messages from a refused call: the fields the server named (a run spec's, a
 * rejected input's), or the one field a form ties the refusal's code to. Empty when the
 * refusal is about no field in particular.
 */
export function fieldErrorsFrom (error: unknown, codeFields: CodeFields = {}): Record<string, string> {
  const mapped = codeFields[apiErrorAppCode(error) ?? ''] ?? codeFields[apiErrorCode(error) ?? '']
  if (mapped !== undefined) return typeof mapped === 'string' ? { [mapped]: apiErrorMessage(error) } : { [mapped.field]: mapped.message }
  return Object.fromEntries(apiErrorFields(error).map((f) => [f.field, f.message]))
}
