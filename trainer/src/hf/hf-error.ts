import { CodedError } from '@barnraise/protocol'
export type HuggingFaceErrorCode =
  | 'ERR_MISSING_FILE'
  | 'ERR_BAD_CONFIG'
  | 'ERR_BAD_INDEX'
  | 'ERR_MISSING_TENSOR'
  | 'ERR_UNEXPECTED_TENSOR'
  | 'ERR_SHAPE_MISMATCH'
  | 'ERR_UNSUPPORTED_DTYPE'
  | 'ERR_NON_FINITE'
  | 'ERR_OUT_OF_RANGE'

/** A checkpoint that cannot be exported or imported, naming the file or tensor at fault. */
export class HuggingFaceError extends CodedError<HuggingFaceErrorCode> {}
