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
  | 'ERR_BUSY'

/** A refusal a user can act on, as opposed to a bug. */
export class CoordinatorError extends CodedError<CoordinatorErrorCode> {}
