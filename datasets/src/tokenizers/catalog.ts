// The tokenizers a run can name without uploading one.
import gpt2Ranks from 'js-tiktoken/ranks/gpt2'
import { createHash } from 'node:crypto'
import { byteTokenizer } from './byte-level.ts'
import { huggingFaceTokenizer } from './hugging-face-tokenizer.ts'
import { tiktokenTokenizerJson } from './tiktoken-vocabulary.ts'
import type { TiktokenRanksFile } from './tiktoken-vocabulary.ts'
import type { TextTokenizer } from './text-tokenizer.ts'
import { TokenizerError } from './tokenizer-error.ts'

/** One offered tokenizer, as the launch form lists it. */
export interface CatalogEntry { name: string, label: string, vocabSize: number, description: string }

export const TOKENIZER_CATALOG: readonly CatalogEntry[] = Object.freeze([
  { name: 'byte', label: 'Bytes (256)', vocabSize: 256, description: 'One token per UTF-8 byte. Any text, no vocabulary; sequences are about 4× longer than with BPE.' },
  { name: 'gpt2-1k', label: 'GPT-2 first 1k (1,025)', vocabSize: 1025, description: 'GPT-2\'s byte-level BPE cut to its 256 bytes and first 768 merges, plus <|endoftext|>: BPE small enough for CPU-sized models.' },
  { name: 'gpt2', label: 'GPT-2 (50,257)', vocabSize: 50257, description: 'GPT-2\'s byte-level BPE (as js-tiktoken ships it), with <|endoftext|> between documents. For GPU-sized models.' }
])

/** GPT-2's rank file cut to its first `keep` tokens, with <|endoftext|> right after them. */
function truncatedRanks (file: TiktokenRanksFile, keep: number): TiktokenRanksFile {
  const tokens = file.bpe_ranks.split('\n').filter((l) => l !== '').flatMap((line) => {
    const [, offset, ...rest] = line.split(' ')
    return rest.map((t, i) => ({ t, rank: Number(offset) + i }))
  }).filter((x) => x.rank < keep).sort((a, b) => a.rank - b.rank)
  return { pat_str: file.pat_str, special_tokens: { '<|endoftext|>': keep }, bpe_ranks: `! 0 ${tokens.map((x) => x.t).join(' ')}` }
}

const built = new Map<string, TextTokenizer>()

/** The catalogue tokenizer called `name` (built once per process; GPT-2's takes about a second). */
export function catalogTokenizer (name: string): TextTokenizer {
  const cached = built.get(name)
  if (cached !== undefined) return cached
  let tokenizer: TextTokenizer
  if (name === 'byte') tokenizer = byteTokenizer
  else if (name === 'gpt2') tokenizer = huggingFaceTokenizer(name, tiktokenTokenizerJson(gpt2Ranks))
  else if (name === 'gpt2-1k') tokenizer = huggingFaceTokenizer(name, tiktokenTokenizerJson(truncatedRanks(gpt2Ranks, 1024)))
  else throw new TokenizerError('ERR_UNKNOWN_TOKENIZER', `no tokenizer called "${name}"; choose one of ${TOKENIZER_CATALOG.map((e) => e.name).join(', ')} or upload a tokenizer.json`)
  built.set(name, tokenizer)
  return tokenizer
}

/** How an uploaded tokenizer.json is named: the sha256 of its bytes. */
export function uploadedTokenizerName (bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** An uploaded tokenizer.json (its bytes), named by its sha256. */
export function uploadedTokenizer (bytes: Uint8Array): TextTokenizer {
  let raw: unknown
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new TokenizerError('ERR_BAD_TOKENIZER', `the tokenizer file is not UTF-8 JSON: ${(err as Error).message}`)
  }
  const depth = nestingDepth(raw)
  if (depth > MAX_TOKENIZER_DEPTH) {
    throw new TokenizerError('ERR_BAD_TOKENIZER', `the tokenizer file nests ${depth > 10_000 ? 'more than 10000' : depth} levels deep; a tokenizer.json nests fewer than ${MAX_TOKENIZER_DEPTH} (save it again from the tokenizers library)`)
  }
  return huggingFaceTokenizer(uploadedTokenizerName(bytes), raw)
}

/**
 * Levels of arrays and objects a tokenizer.json may nest: Hugging Face's nest fewer than ten.
 * Unknown keys are kept and written back into every checkpoint folder, indented: a value nested
 * thousands deep made that a string of tens of megabytes, or overflowed the stack on each request.
 */
export const MAX_TOKENIZER_DEPTH = 64

/** How deep `value` nests (a scalar: 0), counted without recursion and stopping past 10000. */
function nestingDepth (value: unknown): number {
  let deepest = 0
  const stack: Array<{ value: unknown, depth: number }> = [{ value, depth: 0 }]
  while (stack.length > 0) {
    const { value: v, depth } = stack.pop()!
    if (v === null || typeof v !== 'object') continue
    const here = depth + 1
    if (here > deepest) deepest = here
    if (deepest > 10_000) return deepest
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push({ value: child, depth: here })
    }
  }
  return deepest
}
