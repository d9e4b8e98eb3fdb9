// Hugging Face tokenizer files for the byte tokenizer, loadable by
// `AutoTokenizer.from_pretrained` (PreTrainedTokenizerFast over tokenizer.json).
//
// Choice: a BPE model with no merges over the 256 GPT-2 byte-level symbols, behind the
// ByteLevel pre-tokenizer and decoder. ByteLevel turns every input byte b into the printable
// symbol bytes_to_unicode(b); with no merges, BPE emits one token per symbol; the vocabulary maps
// the symbol of byte b to id b. So id = raw UTF-8 byte value, exactly as data/byte-tokenizer.ts,
// for any text, and decoding reverses it. No special tokens: all 256 ids are bytes, and nothing
// is added around the text (no BOS/EOS), matching how the shards are tokenized.
import { BYTE_VOCAB_SIZE } from '../data/byte-tokenizer.ts'

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100 onwards. */
export function byteToUnicode (): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
  const out: string[] = new Array<string>(256)
  let next = 256
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(printable(b) ? b : next++)
  return out
}

/** tokenizer.json: the byte-level BPE-without-merges model whose ids are byte values. */
export function tokenizerJson (): Record<string, unknown> {
  const symbols = byteToUnicode()
  const vocab: Record<string, number> = {}
  for (let b = 0; b < BYTE_VOCAB_SIZE; b++) vocab[symbols[b]] = b
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: []
    }
  }
}

/** tokenizer_config.json: the fast tokenizer class, no special tokens, the model's context length. */
export function tokenizerConfigJson (modelMaxLength: number): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    model_max_length: modelMaxLength,
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    bos_token: null,
    eos_token: null,
    unk_token: null,
    pad_token: null,
    added_tokens_decoder: {}
  }
}

/** special_tokens_map.json: empty, as every id is a byte. */
export function specialTokensMapJson (): Record<string, unknown> {
  return {}
}
