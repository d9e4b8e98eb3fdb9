import { BYTE_VOCAB_SIZE, decodeBytes, encodeBytesInt32, specialTokensMapJson, tokenizerConfigJson, tokenizerJson } from '@barnraise/trainer'
import type { TextTokenizer } from './text-tokenizer.ts'

/** The byte-level tokenizer every run used before BPE: id = UTF-8 byte, no document separator. */
export const byteTokenizer: TextTokenizer = {
  name: 'byte',
  vocabSize: BYTE_VOCAB_SIZE,
  eosId: null,
  encode: encodeBytesInt32,
  decode: decodeBytes,
  huggingFaceFiles: (modelMaxLength) => new Map([
    ['tokenizer.json', tokenizerJson()],
    ['tokenizer_config.json', tokenizerConfigJson(modelMaxLength)],
    ['special_tokens_map.json', specialTokensMapJson()]
  ])
}
