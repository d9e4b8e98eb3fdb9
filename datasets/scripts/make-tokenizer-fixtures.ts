// Writes test-data/tokenizer-fixtures.json: token ids for fixed sample texts, produced by the
// reference implementations, for tests to compare ours with.
//   - `gpt2`: OpenAI's tiktoken (the `tiktoken` npm package: tiktoken's Rust core as WASM),
//     encoding "gpt2".
//   - `gpt2-1k`: the same tiktoken core given GPT-2's first 1,024 ranks and <|endoftext|> = 1024.
// Each is cross-checked with Hugging Face's Rust `tokenizers` (the `tokenizers` npm package, the
// library `AutoTokenizer` runs) loading the tokenizer.json we build, so a checkpoint's tokenizer
// file gives the same ids in Python. The script stops if the two references disagree.
// Run: bin/node datasets/scripts/make-tokenizer-fixtures.ts
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { get_encoding } from 'tiktoken'
import { Tiktoken } from 'tiktoken/lite'
import gpt2Ranks from 'js-tiktoken/ranks/gpt2'
import { Tokenizer as RustTokenizer } from 'tokenizers'
import { catalogTokenizer } from '../src/tokenizers/catalog.ts'

const kjv = gunzipSync(readFileSync(new URL('../../data/corpus/kjv.txt.gz', import.meta.url))).toString('utf8')
const paragraphs = kjv.split('\n\n').filter((p) => p.length > 40)
export const SAMPLE_TEXTS = [
  '',
  'In the beginning God created the heaven and the earth.',
  "Hello world, it's 2026!  Two  spaces\n\nand a\ttab; they'll say we've won.",
  '   leading spaces, trailing spaces   ',
  'naïve café — Ünïcödé, 日本語のテキスト, Ελληνικά, עברית, 🤖🚀 emoji and ZWJ 👩‍👩‍👧',
  'def f(x):\n    return x ** 2  # code\n',
  '3.14159 1,000,000 0x1F 2026-12-04T20:52:30Z',
  'The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!!! ???',
  'one document<|endoftext|>another: the special token in text is the special token, as in AutoTokenizer',
  ...[7, 301, 1999, 4200].map((i) => paragraphs[i % paragraphs.length]!)
]

function rustIds (json: unknown, text: string): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'))
  const file = join(dir, 'tokenizer.json')
  writeFileSync(file, JSON.stringify(json))
  const tok = RustTokenizer.fromFile(file)
  return tok.encode(text, null, { addSpecialTokens: false }).then((e) => e.getIds())
}

const first1024 = gpt2Ranks.bpe_ranks.split(' ').slice(2, 2 + 1024).map((b64, rank) => `${b64} ${rank}`).join('\n')
const references: Record<string, (text: string) => number[]> = {
  gpt2: (() => { const e = get_encoding('gpt2'); return (t: string) => Array.from(e.encode(t, 'all')) })(),
  'gpt2-1k': (() => { const e = new Tiktoken(first1024, { '<|endoftext|>': 1024 }, gpt2Ranks.pat_str); return (t: string) => Array.from(e.encode(t, 'all')) })()
}

const out: Record<string, Array<{ text: string, ids: number[] }>> = {}
for (const [name, reference] of Object.entries(references)) {
  const json = catalogTokenizer(name).huggingFaceFiles(2048).get('tokenizer.json')
  out[name] = []
  for (const text of SAMPLE_TEXTS) {
    const ids = reference(text)
    const rust = await rustIds(json, text)
    if (JSON.stringify(rust) !== JSON.stringify(ids)) throw new Error(`${name}: tiktoken and HF tokenizers disagree on ${JSON.stringify(text.slice(0, 40))}`)
    out[name].push({ text, ids })
  }
}
const made = 'ids from tiktoken 1.0.22 (npm `tiktoken`, WASM of OpenAI tiktoken) with allowed_special "all" — gpt2: get_encoding("gpt2"); gpt2-1k: Tiktoken(first 1,024 GPT-2 ranks, {"<|endoftext|>": 1024}, GPT-2 pattern) — each cross-checked against Hugging Face tokenizers 0.23.2 (npm `tokenizers`, Rust) loading our tokenizer.json; made by datasets/scripts/make-tokenizer-fixtures.ts'
// One sample per line keeps diffs readable.
const body = Object.entries(out).map(([name, samples]) => `  ${JSON.stringify(name)}: [\n${samples.map((s) => `   ${JSON.stringify(s)}`).join(',\n')}\n  ]`).join(',\n')
writeFileSync(new URL('../test-data/tokenizer-fixtures.json', import.meta.url), `{\n "made": ${JSON.stringify(made)},\n "tokenizers": {\n${body}\n }\n}\n`)
console.log(`wrote ${Object.values(out).reduce((n, l) => n + l.length, 0)} samples`)
