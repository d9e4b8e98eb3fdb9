import { CodedError } from '@barnraise/protocol'
export type ModelErrorCode = 'ERR_BAD_PARAMS' | 'ERR_BAD_INPUT' | 'ERR_TOKEN_OUT_OF_RANGE' | 'ERR_UNKNOWN_PRESET'

/** A model call refused before any arithmetic, with a code a caller can switch on. */
export class ModelError extends CodedError<ModelErrorCode> {}
