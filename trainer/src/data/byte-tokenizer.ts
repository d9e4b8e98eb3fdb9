import { CodedError } from '@barnraise/protocol'
// The byte-level tokenizer: token id = UTF-8 byte value, vocabulary 256, no special tokens.
// Exported Hugging Face tokenizer files (hf/tokenizer-files.ts) map the same ids to the same bytes.

/** Vocabulary size of the byte tokenizer. */
export const BYTE_VOCAB_SIZE = 256

/** A token id outside the byte vocabulary. */
export class TokenizerError extends CodedError<'ERR_TOKEN_OUT_OF_RANGE'> {
  constructor (message: string) {
    super('ERR_TOKEN_OUT_OF_RANGE', message)
  }
}

/** Text → token ids (its UTF-8 bytes). */
export function encodeBytes (text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

/** Text → token ids as Int32Array, the model's input type. */
export function encodeBytesInt32 (text: string): Int32Array {
  return Int32Array.from(encodeBytes(text))
}

/** Token ids → text; invalid UTF-8 (a model can emit any byte sequence) becomes U+FFFD. */
export function decodeBytes (tokens: ArrayLike<number>): string {
  const bytes = new Uint8Array(tokens.length)
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]
    if (!Number.isInteger(t) || t < 0 || t >= BYTE_VOCAB_SIZE) throw new TokenizerError(`token ${i} is ${t}; byte tokens are integers 0..255`)
    bytes[i] = t
  }
  return new TextDecoder('utf-8').decode(bytes)
}
