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

/** A refusal split between the fields a form shows and a message for above it. */
export interface PlacedErrors { fields: Record<string, string>, message: string | null }

/**
 * Where a form shows a refusal: on each field it has (`shown`), and above the form for the
 * rest. A message tied to a field the form does not show (an invitation code from the link, a
 * field only another role fills in) would otherwise be set and never seen, so the form said nothing.
 */
export function placeFieldErrors (error: unknown, shown: readonly string[], codeFields: CodeFields = {}): PlacedErrors {
  const fields: Record<string, string> = {}
  const elsewhere: string[] = []
  for (const [field, message] of Object.entries(fieldErrorsFrom(error, codeFields))) {
    if (shown.includes(field)) fields[field] = message
    else elsewhere.push(field === '' ? message : `${field}: ${message}`)
  }
  const text = elsewhere.join('; ')
  if (text !== '') return { fields, message: text.charAt(0).toUpperCase() + text.slice(1) }
  return { fields, message: Object.keys(fields).length > 0 ? null : apiErrorMessage(error) }
}
