// Writes test-data/tokenizer-fixtures.json: token ids for fixed sample texts, produced by the
// reference implementations, for tests to compare ours with.
//   - `gpt2`: OpenAI's tiktoken (the `tiktoken` npm package: tiktoken's Rust core as WASM),
//     encoding "gpt2".
//   - `gpt2-1k`: the same tiktoken core given GPT-2's first 1,024 ranks and <|endoftext|> = 1024.
//   - `byte`: Hugging Face's Rust `tokenizers` loading the byte tokenizer's tokenizer.json (the
//     file a byte-level checkpoint folder carries), cross-checked against the text's UTF-8 bytes.
// The BPE entries are cross-checked with Hugging Face's Rust `tokenizers` (the `tokenizers` npm
// package, the library `AutoTokenizer` runs) loading the tokenizer.json we build, so a
// checkpoint's tokenizer file gives the same ids in Python. The script stops if two references
// disagree.
// It also builds two tokenizer.json files of other kinds than GPT-2's byte-level BPE, as an
// organizer might upload them, with Rust `tokenizers` itself, and records Rust's ids and decoded
// text for them (test-data/<name>.tokenizer.json):
//   - `wordpiece-kjv`: BERT-style WordPiece (BertNormalizer lowercasing and stripping accents,
//     BertPreTokenizer, WordPiece decoder, [UNK]/[SEP]/… specials) over a vocabulary of ASCII
//     characters, their ## continuations, a few suffixes and the KJV's 1,500 commonest words.
//   - `unigram-kjv`: SentencePiece-style Unigram (NFKC, Metaspace ▁ pre-tokenizer and decoder)
//     trained by Rust's UnigramTrainer on the KJV's first 1 MB, cut to its 1,200 best pieces
//     plus every single character, with <unk> = 0 and </s> as a special token. The trainer is
//     not deterministic (scores move in the 4th decimal between runs, even on one thread), so
//     the saved file, not this script, is the fixture: a rerun rewrites it and its ids together.
// Run: bin/node datasets/scripts/make-tokenizer-fixtures.ts
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { get_encoding } from 'tiktoken'
import { Tiktoken } from 'tiktoken/lite'
import gpt2Ranks from 'js-tiktoken/ranks/gpt2'
import { Tokenizer as RustTokenizer, Unigram, WordPiece, bertNormalizer, bertPreTokenizer, metaspaceDecoder, metaspacePreTokenizer, nfkcNormalizer, wordPieceDecoder } from 'tokenizers'
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

const versionOf = (pkg: string): string => (JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')) as { version: string }).version
const RUST = `Hugging Face tokenizers ${versionOf('tokenizers')} (npm \`tokenizers\`, Rust)`
const TIKTOKEN = `tiktoken ${versionOf('tiktoken')} (npm \`tiktoken\`, WASM of OpenAI tiktoken) with allowed_special "all"`
const scratch = mkdtempSync(join(tmpdir(), 'tok-'))

/** Rust `tokenizers`' ids for `text` from a tokenizer.json file, as AutoTokenizer loads it. */
async function rustIds (file: string, text: string): Promise<number[]> {
  return (await RustTokenizer.fromFile(file).encode(text, null, { addSpecialTokens: false })).getIds()
}

/** Writes a parsed tokenizer.json to a scratch file for Rust to load. */
function scratchFile (name: string, json: unknown): string {
  const file = join(scratch, `${name}.tokenizer.json`)
  writeFileSync(file, JSON.stringify(json))
  return file
}

const first1024 = gpt2Ranks.bpe_ranks.split(' ').slice(2, 2 + 1024).map((b64, rank) => `${b64} ${rank}`).join('\n')
const tiktokenIds = (e: { encode: (t: string, allowed: 'all') => Uint32Array }) => (t: string): number[] => Array.from(e.encode(t, 'all'))

/** Each catalogue tokenizer: the reference that gives the fixture's ids, and a second one that must agree. */
const catalogue: Array<{ name: string, made: string, reference: (text: string) => Promise<number[]> | number[], check: (text: string) => Promise<number[]> | number[] }> = [
  {
    name: 'gpt2',
    made: `${TIKTOKEN}, get_encoding("gpt2"); cross-checked against ${RUST} loading our tokenizer.json`,
    reference: tiktokenIds(get_encoding('gpt2')),
    check: (() => { const file = scratchFile('gpt2', catalogTokenizer('gpt2').huggingFaceFiles(2048).get('tokenizer.json')); return async (t: string) => await rustIds(file, t) })()
  },
  {
    name: 'gpt2-1k',
    made: `${TIKTOKEN}, Tiktoken(first 1,024 GPT-2 ranks, {"<|endoftext|>": 1024}, GPT-2 pattern); cross-checked against ${RUST} loading our tokenizer.json`,
    reference: tiktokenIds(new Tiktoken(first1024, { '<|endoftext|>': 1024 }, gpt2Ranks.pat_str)),
    check: (() => { const file = scratchFile('gpt2-1k', catalogTokenizer('gpt2-1k').huggingFaceFiles(2048).get('tokenizer.json')); return async (t: string) => await rustIds(file, t) })()
  },
  {
    name: 'byte',
    made: `${RUST} loading the byte tokenizer's tokenizer.json (trainer's tokenizerJson(): ByteLevel BPE, 256 symbols, no merges); cross-checked against the text's UTF-8 bytes`,
    reference: (() => { const file = scratchFile('byte', catalogTokenizer('byte').huggingFaceFiles(2048).get('tokenizer.json')); return async (t: string) => await rustIds(file, t) })(),
    check: (t) => Array.from(new TextEncoder().encode(t))
  }
]

const made: Record<string, string> = {}
const out: Record<string, Array<{ text: string, ids: number[] }>> = {}
for (const { name, made: how, reference, check } of catalogue) {
  made[name] = how
  out[name] = []
  for (const text of SAMPLE_TEXTS) {
    const ids = await reference(text)
    if (JSON.stringify(await check(text)) !== JSON.stringify(ids)) throw new Error(`${name}: the two references disagree on ${JSON.stringify(text.slice(0, 40))}`)
    out[name].push({ text, ids })
  }
}

// Uploaded kinds: tokenizer.json files built here by Rust `tokenizers`, saved as an organizer
// would upload them; their reference ids come from Rust loading the saved file.
const ASCII = Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i)).filter((c) => !/[A-Z]/.test(c))

function wordPieceKjv (): RustTokenizer {
  const counts = new Map<string, number>()
  for (const w of kjv.toLowerCase().match(/[a-z]+/g) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1)
  const words = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 1500).map(([w]) => w)
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
  const vocab: Record<string, number> = {}
  // Each piece once, so ids are dense: a later duplicate would leave a hole.
  for (const piece of [...specials, ...ASCII, ...ASCII.map((c) => `##${c}`), '##ed', '##eth', '##est', '##ing', '##ly', '##er', '##es', ...words]) vocab[piece] ??= Object.keys(vocab).length
  const tok = new RustTokenizer(WordPiece.init(vocab, { unkToken: '[UNK]' }))
  tok.setNormalizer(bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true }))
  tok.setPreTokenizer(bertPreTokenizer())
  tok.setDecoder(wordPieceDecoder('##', true))
  tok.addSpecialTokens(specials)
  return tok
}

function unigramKjv (): RustTokenizer {
  const corpus = join(scratch, 'kjv-1mb.txt')
  writeFileSync(corpus, kjv.slice(0, 1_000_000))
  const trainer = new RustTokenizer(Unigram.empty())
  trainer.setNormalizer(nfkcNormalizer())
  trainer.setPreTokenizer(metaspacePreTokenizer())
  trainer.train([corpus])
  const trainedFile = join(scratch, 'unigram-trained.json')
  trainer.save(trainedFile, false)
  const trained = (JSON.parse(readFileSync(trainedFile, 'utf8')) as { model: { vocab: Array<[string, number]> } }).model.vocab
  const best = [...trained].sort((a, b) => b[1] - a[1]).filter(([piece], rank) => rank < 1200 || [...piece].length === 1)
  const tok = new RustTokenizer(Unigram.init([['<unk>', 0], ...best], { unkId: 0 }))
  tok.setNormalizer(nfkcNormalizer())
  tok.setPreTokenizer(metaspacePreTokenizer())
  tok.setDecoder(metaspaceDecoder())
  tok.addSpecialTokens(['<unk>', '</s>'])
  return tok
}

const uploads: Array<{ name: string, made: string, build: () => RustTokenizer, extra: string[] }> = [
  { name: 'wordpiece-kjv', made: `built with ${RUST}: WordPiece.init(ASCII characters, their ## continuations, 7 suffixes and the KJV's 1,500 commonest lowercase words; unk [UNK]), bertNormalizer (lowercase, strip accents), bertPreTokenizer, wordPieceDecoder("##"), specials [PAD] [UNK] [CLS] [SEP] [MASK]; ids and decoded text from ${RUST} loading the saved file, encode without special tokens, decode keeping them`, build: wordPieceKjv, extra: ['one document [SEP] another [MASK] [UNK]', 'Unknowable quaggas: zyzzyva!'] },
  { name: 'unigram-kjv', made: `built with ${RUST}: Unigram trained by the default UnigramTrainer on the KJV's first 1,000,000 characters (NFKC, Metaspace), cut to the 1,200 best-scored pieces plus every single-character piece, Unigram.init with <unk> = 0, nfkcNormalizer, metaspacePreTokenizer/metaspaceDecoder ("▁", prepend always), specials <unk> </s>; ids and decoded text from ${RUST} loading the saved file, encode without special tokens, decode keeping them (the trainer is not deterministic: these ids go with the saved file, not with a retrained one)`, build: unigramKjv, extra: ['one document</s>another</s>', '  two  leading, ▁ a literal meta-space'] }
]

const uploaded: Record<string, { file: string, vocabSize: number, samples: Array<{ text: string, ids: number[], decoded: string }> }> = {}
for (const { name, made: how, build, extra } of uploads) {
  const fileName = `${name}.tokenizer.json`
  const file = new URL(`../test-data/${fileName}`, import.meta.url).pathname
  build().save(file, false)
  const rust = RustTokenizer.fromFile(file)
  const samples = []
  for (const text of [...SAMPLE_TEXTS, ...extra]) {
    const ids = (await rust.encode(text, null, { addSpecialTokens: false })).getIds()
    samples.push({ text, ids, decoded: await rust.decode(ids, false) })
  }
  made[name] = how
  uploaded[name] = { file: fileName, vocabSize: rust.getVocabSize(true), samples }
}

// One sample per line keeps diffs readable.
const lines = (samples: unknown[], indent: string): string => samples.map((s) => `${indent}${JSON.stringify(s)}`).join(',\n')
const catalogueBody = Object.entries(out).map(([name, samples]) => `  ${JSON.stringify(name)}: [\n${lines(samples, '   ')}\n  ]`).join(',\n')
const uploadedBody = Object.entries(uploaded).map(([name, u]) => `  ${JSON.stringify(name)}: {\n   "file": ${JSON.stringify(u.file)},\n   "vocabSize": ${u.vocabSize},\n   "samples": [\n${lines(u.samples, '    ')}\n   ]\n  }`).join(',\n')
const madeBody = Object.entries(made).map(([name, how]) => `  ${JSON.stringify(name)}: ${JSON.stringify(`${how}; made by datasets/scripts/make-tokenizer-fixtures.ts`)}`).join(',\n')
writeFileSync(new URL('../test-data/tokenizer-fixtures.json', import.meta.url), `{\n "made": {\n${madeBody}\n },\n "tokenizers": {\n${catalogueBody}\n },\n "uploaded": {\n${uploadedBody}\n }\n}\n`)
console.log(`wrote ${Object.values(out).reduce((n, l) => n + l.length, 0)} catalogue samples and ${Object.values(uploaded).reduce((n, u) => n + u.samples.length, 0)} for ${Object.keys(uploaded).length} uploaded tokenizers`)
