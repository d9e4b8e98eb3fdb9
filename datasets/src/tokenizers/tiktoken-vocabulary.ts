// Turns a tiktoken rank table (as js-tiktoken ships GPT-2's) into a Hugging Face tokenizer.json.
//
// tiktoken stores a byte-level BPE as "token bytes → rank"; tokenizer.json stores a vocabulary
// plus an ordered merge list. The two are the same model: a token of rank r (r ≥ 256) is the
// merge of the two parts that BPE makes of its own bytes using only ranks below r, and its merge
// priority is r. This is how Hugging Face converts tiktoken files (convert_slow_tokenizer's
// TikTokenConverter); known-answer tests compare our result with tiktoken itself.
import { byteToUnicode } from '@barnraise/trainer'
import { TokenizerError } from './tokenizer-error.ts'

/** js-tiktoken's compact rank file: lines "! <offset> <base64 token> <base64 token> …", ranks counting up from offset. */
export interface TiktokenRanksFile {
  pat_str: string
  special_tokens: Record<string, number>
  bpe_ranks: string
  explicit_n_vocab?: number
}

/** Token bytes by rank (index = rank). */
export function decodeRanks (bpeRanks: string): Uint8Array[] {
  const byRank: Uint8Array[] = []
  for (const line of bpeRanks.split('\n')) {
    if (line === '') continue
    const [, offsetText, ...tokens] = line.split(' ')
    const offset = Number.parseInt(offsetText ?? '', 10)
    if (!Number.isSafeInteger(offset) || offset < 0) throw new TokenizerError('ERR_BAD_VOCABULARY', `rank line starts with "${offsetText}", not a rank offset`)
    tokens.forEach((b64, i) => { byRank[offset + i] = Buffer.from(b64, 'base64') })
  }
  for (let r = 0; r < byRank.length; r++) if (byRank[r] === undefined) throw new TokenizerError('ERR_BAD_VOCABULARY', `rank ${r} has no token`)
  return byRank
}

const key = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1')

/** The two parts BPE makes of `token` when only merges ranked below `maxRank` may apply. */
function splitBelow (token: Uint8Array, maxRank: number, rankOf: Map<string, number>): string[] {
  let parts = Array.from(token, (b) => String.fromCharCode(b))
  while (parts.length > 1) {
    let best = -1
    let bestRank = maxRank
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = rankOf.get(parts[i]! + parts[i + 1]!)
      if (r !== undefined && r < bestRank) { bestRank = r; best = i }
    }
    if (best < 0) break
    parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)]
  }
  return parts
}

/** tokenizer.json for a GPT-2-style byte-level BPE given its tokens by rank and its special tokens. */
export function tiktokenTokenizerJson (file: TiktokenRanksFile): Record<string, unknown> {
  const byRank = decodeRanks(file.bpe_ranks)
  const rankOf = new Map<string, number>()
  byRank.forEach((t, r) => rankOf.set(key(t), r))
  const unicode = byteToUnicode()
  const symbol = (latin1: string): string => Array.from(latin1, (c) => unicode[c.charCodeAt(0)]!).join('')
  const vocab: Record<string, number> = {}
  const merges: string[] = []
  byRank.forEach((token, rank) => {
    vocab[symbol(key(token))] = rank
    if (token.length < 2) return
    const parts = splitBelow(token, rank, rankOf)
    if (parts.length !== 2) throw new TokenizerError('ERR_BAD_VOCABULARY', `token of rank ${rank} is not the merge of two lower-ranked tokens`)
    merges.push(`${symbol(parts[0]!)} ${symbol(parts[1]!)}`)
  })
  const added = Object.entries(file.special_tokens).map(([content, id]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }))
  for (const a of added) vocab[a.content] = a.id
  if (file.pat_str !== GPT2_PATTERN) throw new TokenizerError('ERR_BAD_VOCABULARY', 'only vocabularies that split text with GPT-2\'s pattern (the ByteLevel pre-tokenizer) are converted')
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges }
  }
}

/** GPT-2's pre-tokenizer pattern, the one the ByteLevel pre-tokenizer applies. */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
