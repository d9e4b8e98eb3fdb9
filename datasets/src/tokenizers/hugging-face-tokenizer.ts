// A tokenizer given as a Hugging Face tokenizer.json, run by @huggingface/tokenizers (the
// pure-JS implementation Transformers.js uses), so it works in workers and needs no native code.
import { Tokenizer } from '@huggingface/tokenizers'
import { z } from 'zod'
import { TokenizerError } from './tokenizer-error.ts'
import type { TextTokenizer } from './text-tokenizer.ts'

/** Most bytes an uploaded tokenizer.json may have (Llama 3's is about 9 MB). */
export const MAX_TOKENIZER_JSON_BYTES = 32 * 1024 * 1024

/** Largest vocabulary a run may use: 2^31 ids fit a shard, but no real tokenizer comes near 2^20. */
export const MAX_VOCAB_SIZE = 1 << 20

const addedTokenSchema = z.object({ id: z.number().int().nonnegative(), content: z.string(), special: z.boolean().optional() }).passthrough()

const tokenizerJsonSchema = z.object({
  added_tokens: z.array(addedTokenSchema).max(100_000).default([]),
  model: z.object({
    type: z.enum(['BPE', 'WordPiece', 'Unigram', 'WordLevel']),
    vocab: z.union([z.record(z.string(), z.number().int().nonnegative()), z.array(z.tuple([z.string(), z.number()]))])
  }).passthrough()
}).passthrough()

/** GPT-2's pre-tokenizer pattern: what a ByteLevel pre-tokenizer with use_regex splits text by. */
const BYTE_LEVEL_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu

/** Pieces remembered by the fast path before its cache starts afresh. */
const PIECE_CACHE_LIMIT = 200_000

/**
 * Whether text can be encoded piece by piece: a plain byte-level BPE (GPT-2's family) runs BPE
 * on each regex piece alone, so encoding the pieces separately and caching each piece's ids gives
 * the same ids as encoding the whole text, many times faster on real text (the same words recur).
 * The known-answer tests hold this to the reference ids.
 */
function piecewiseEligible (raw: Record<string, unknown>): boolean {
  const pre = raw.pre_tokenizer as Record<string, unknown> | null | undefined
  const model = raw.model as Record<string, unknown>
  const added = (raw.added_tokens ?? []) as Array<Record<string, unknown>>
  return (raw.normalizer === null || raw.normalizer === undefined) &&
    pre?.type === 'ByteLevel' && pre.use_regex !== false && pre.add_prefix_space !== true &&
    model.type === 'BPE' && (model.dropout === null || model.dropout === undefined) &&
    added.every((a) => a.lstrip !== true && a.rstrip !== true && a.single_word !== true && a.normalized !== true)
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Names tried, in order, for the token that ends a document; `[SEP]` last, for BERT-style
 * WordPiece vocabularies, whose fallback separator (a blank line) encodes to nothing.
 */
const EOS_NAMES = ['<|endoftext|>', '<|end_of_text|>', '</s>', '<eos>', '<|eos|>', '[SEP]']

function vocabSizeOf (json: z.infer<typeof tokenizerJsonSchema>): number {
  let max = -1
  const vocab = json.model.vocab
  if (Array.isArray(vocab)) max = vocab.length - 1
  else for (const id of Object.values(vocab)) if (id > max) max = id
  for (const a of json.added_tokens) if (a.id > max) max = a.id
  return max + 1
}

/** Loads a tokenizer.json (parsed), checking its shape; `name` is how runs will refer to it. */
export function huggingFaceTokenizer (name: string, raw: unknown): TextTokenizer {
  const parsed = tokenizerJsonSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new TokenizerError('ERR_BAD_TOKENIZER', `not a Hugging Face tokenizer.json: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim())
  }
  const json = parsed.data
  const vocabSize = vocabSizeOf(json)
  if (vocabSize < 2 || vocabSize > MAX_VOCAB_SIZE) throw new TokenizerError('ERR_BAD_TOKENIZER', `the tokenizer has ${vocabSize} ids; a run takes 2 to ${MAX_VOCAB_SIZE}`)
  let impl: Tokenizer
  try {
    impl = new Tokenizer(raw as object, {})
  } catch (err) {
    throw new TokenizerError('ERR_BAD_TOKENIZER', `the tokenizer.json could not be loaded: ${(err as Error).message}`)
  }
  const eos = EOS_NAMES.map((n) => json.added_tokens.find((a) => a.content === n)).find((a) => a !== undefined)
  const specialTokens = json.added_tokens.filter((a) => a.special === true).map((a) => a.content)
  const slow = (text: string): number[] => text === '' ? [] : impl.encode(text, { add_special_tokens: false }).ids
  let encode = (text: string): Int32Array => Int32Array.from(slow(text))
  if (piecewiseEligible(raw as Record<string, unknown>)) {
    const addedIds = new Map(json.added_tokens.map((a) => [a.content, a.id]))
    // Longest first, so one added token that starts another is not matched first.
    const addedPattern = addedIds.size === 0 ? null : new RegExp([...addedIds.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g')
    let cache = new Map<string, number[]>()
    const pieceIds = (piece: string): number[] => {
      let ids = cache.get(piece)
      if (ids === undefined) {
        ids = slow(piece)
        if (cache.size >= PIECE_CACHE_LIMIT) cache = new Map()
        cache.set(piece, ids)
      }
      return ids
    }
    const encodeSpan = (span: string, out: number[]): void => {
      for (const m of span.matchAll(BYTE_LEVEL_PATTERN)) for (const id of pieceIds(m[0])) out.push(id)
    }
    encode = (text) => {
      const out: number[] = []
      if (addedPattern === null) {
        encodeSpan(text, out)
      } else {
        let at = 0
        for (const m of text.matchAll(addedPattern)) {
          encodeSpan(text.slice(at, m.index), out)
          out.push(addedIds.get(m[0])!)
          at = m.index + m[0].length
        }
        encodeSpan(text.slice(at), out)
      }
      return Int32Array.from(out)
    }
  }
  return {
    name,
    vocabSize,
    eosId: eos?.id ?? null,
    encode,
    decode: (ids) => {
      const list = Array.from(ids)
      for (const [i, id] of list.entries()) {
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new TokenizerError('ERR_TOKEN_OUT_OF_RANGE', `token ${i} is ${id}; this tokenizer's ids are 0..${vocabSize - 1}`)
      }
      return list.length === 0 ? '' : impl.decode(list, { skip_special_tokens: false, clean_up_tokenization_spaces: false })
    },
    huggingFaceFiles: (modelMaxLength) => new Map([
      ['tokenizer.json', raw as Record<string, unknown>],
      ['tokenizer_config.json', {
        tokenizer_class: 'PreTrainedTokenizerFast',
        model_max_length: modelMaxLength,
        add_bos_token: false,
        add_eos_token: false,
        clean_up_tokenization_spaces: false,
        bos_token: null,
        eos_token: eos?.content ?? null,
        unk_token: null,
        pad_token: null
      }],
      ['special_tokens_map.json', eos === undefined ? {} : { eos_token: eos.content, additional_special_tokens: specialTokens.filter((t) => t !== eos.content) }]
    ])
  }
}
