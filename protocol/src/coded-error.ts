/**
 * The one base of every Barnraise error a caller may switch on: a stable `code` and a message
 * a user can act on. Subclasses only name their codes: `class ShardError extends
 * CodedError<ShardErrorCode> {}`; `name` follows the subclass.
 */
export class CodedError<Code extends string = string> extends Error {
  readonly code: Code
  constructor (code: Code, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}
