/** Whether `err` is node:util parseArgs' refusal (an unknown flag, a flag without its value, a stray argument): the user's mistake, not a crash. */
export function isParseArgsError (err: unknown): err is Error {
  const code = (err as { code?: unknown } | undefined)?.code
  return err instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')
}
