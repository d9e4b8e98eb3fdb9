import { CodedError } from '@barnraise/protocol'

export type DatasetErrorCode = 'ERR_BAD_FILE' | 'ERR_BAD_OPTIONS' | 'ERR_BUSY' | 'ERR_TOO_FEW_DOCUMENTS' | 'ERR_BAD_INDEX' | 'ERR_INDEX_WORKER' | 'ERR_QUOTA_EXCEEDED'

/** A dataset that cannot be read or built, with a code a caller can switch on. */
export class DatasetError extends CodedError<DatasetErrorCode> {}
