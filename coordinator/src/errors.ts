import { CodedError } from '@barnraise/protocol'
/** Codes the coordinator's domain code raises; the API and protocols map them to replies. */
export type CoordinatorErrorCode =
  | 'ERR_INVALID_TOKEN'
  | 'ERR_NODE_REVOKED'
  | 'ERR_NOT_ENROLLED'
  | 'ERR_NOT_FOUND'
  | 'ERR_CONFLICT'
  | 'ERR_INVALID_INPUT'
  | 'ERR_FORBIDDEN'
  | 'ERR_SETUP_REQUIRED'
  | 'ERR_INVALID_SETUP_CODE'
  | 'ERR_NAME_TAKEN'
  | 'ERR_EMAIL_TAKEN'
  | 'ERR_BUSY'
  | 'ERR_RATE_LIMITED'
  | 'ERR_QUOTA_EXCEEDED'

/** A refusal a user can act on, as opposed to a bug. */
export class CoordinatorError extends CodedError<CoordinatorErrorCode> {}

/** Too many of one kind of request from one person or address; says when to try again. */
export class RateLimitedError extends CoordinatorError {
  readonly retryAfterS: number

  constructor (message: string, retryAfterS: number) {
    super('ERR_RATE_LIMITED', message)
    this.retryAfterS = retryAfterS
  }
}
