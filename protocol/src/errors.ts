import { CodedError } from './coded-error.ts'
/** Codes a peer may receive for a refused protocol message. */
export type ProtocolErrorCode =
  | 'ERR_MALFORMED_MESSAGE'
  | 'ERR_MESSAGE_TOO_LARGE'
  | 'ERR_INVALID_TOKEN'
  | 'ERR_NOT_ENROLLED'
  | 'ERR_NODE_REVOKED'
  | 'ERR_NOT_ASSIGNED'
  | 'ERR_BUSY'
  /** a peer asked another agent for a blob (or block) that agent does not hold */
  | 'ERR_NOT_HELD'
  | 'ERR_TIMEOUT'
  /** the work unit's round closed (or the unit expired) while its report was uploading */
  | 'ERR_STALE'
  /** the stream ended or was reset before a whole message arrived: the peer went away (retryable) */
  | 'ERR_STREAM_CLOSED'
  /** the coordinator reset the stream: this peer opened streams faster than it allows (retry later) */
  | 'ERR_RATE_LIMITED'
  | 'ERR_INTERNAL'

/** A protocol-level failure with a stable code a caller can switch on. */
export class ProtocolError extends CodedError<ProtocolErrorCode> {}
