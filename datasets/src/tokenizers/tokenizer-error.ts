import { CodedError } from '@barnraise/protocol'

export type TokenizerErrorCode = 'ERR_UNKNOWN_TOKENIZER' | 'ERR_BAD_TOKENIZER' | 'ERR_TOKEN_OUT_OF_RANGE' | 'ERR_BAD_VOCABULARY'

/** A tokenizer that cannot be loaded or a token id it does not know, with a code a caller can switch on. */
export class TokenizerError extends CodedError<TokenizerErrorCode> {}
