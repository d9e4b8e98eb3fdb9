// Tokenization throughput (MB of text per second) against reading the same file without
// tokenizing, measured in the same run: the JSONL reader alone, then the full dataset build
// (read, tokenize, shard, index) with each catalogue tokenizer, and GPT-2 once more with every
// document handed to the library whole (the path tokenizers other than GPT-2-style BPE take).
// The KJV's verses once as JSONL, about 4.5 MB: no text repeats, so only words recurring within
// the corpus hit a cache. Each pass gets a freshly loaded tokenizer (its caches empty), loaded
// before the clock starts; the faster of two passes counts, so a cold file cache or unwarmed
// JIT does not count against the first.
//   bin/node bench/tokenize.bench.ts     (or: pnpm bench tokenize)
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { UPLOAD_BUILD_DEFAULTS, buildDataset, catalogTokenizer, huggingFaceTokenizer, openReader } from '@barnraise/datasets'
import type { TextTokenizer } from '@barnraise/datasets'

const root = fileURLToPath(new URL('..', import.meta.url))
const dir = await mkdtemp(join(tmpdir(), 'tokenize-bench-'))
try {
  const verses = gunzipSync(await readFile(join(root, 'data/corpus/kjv.txt.gz'))).toString('utf8').split('\n').filter((l) => l.trim() !== '')
  const rows = verses.map((v) => JSON.stringify({ text: v }))
  const file = join(dir, 'kjv.jsonl')
  await writeFile(file, rows.join('\n') + '\n')
  const mb = Buffer.byteLength(rows.join('\n')) / 1e6

  /** The faster of two passes, each given what `prepare` made for it outside the timed part. */
  const time = async <T>(prepare: () => T, fn: (prepared: T) => Promise<void>): Promise<number> => {
    let best = Infinity
    for (let i = 0; i < 2; i++) {
      const prepared = prepare()
      const t = performance.now()
      await fn(prepared)
      best = Math.min(best, (performance.now() - t) / 1000)
    }
    return best
  }
  const readOnly = await time(() => undefined, async () => {
    const reader = await openReader(file, 'jsonl', 'text')
    let n = 0
    for await (const item of reader.items()) if (item.kind === 'document') n += item.text.length
    if (n === 0) throw new Error('read nothing')
  })
  console.log(`reading ${mb.toFixed(1)} MB of JSONL without tokenizing: ${(mb / readOnly).toFixed(1)} MB/s`)

  // A fresh tokenizer from the catalogue entry's tokenizer.json: a new library instance and an
  // empty piece cache. The byte tokenizer has no state to start afresh.
  const gpt2Json = catalogTokenizer('gpt2').huggingFaceFiles(1024).get('tokenizer.json')!
  const fresh: Record<string, () => TextTokenizer> = {
    byte: () => catalogTokenizer('byte'),
    'gpt2-1k': () => huggingFaceTokenizer('gpt2-1k', catalogTokenizer('gpt2-1k').huggingFaceFiles(1024).get('tokenizer.json')),
    gpt2: () => huggingFaceTokenizer('gpt2', gpt2Json),
    // The same vocabulary behind a one-step Sequence pre-tokenizer: the same ids, but not the
    // piece-by-piece fast path, so each document goes to the library whole.
    'gpt2, whole documents': () => huggingFaceTokenizer('gpt2', { ...gpt2Json, pre_tokenizer: { type: 'Sequence', pretokenizers: [gpt2Json.pre_tokenizer] } })
  }
  const rates: Record<string, number> = {}
  const counts: Record<string, number> = {}
  for (const [name, make] of Object.entries(fresh)) {
    let tokens = 0
    const seconds = await time(make, async (tokenizer) => {
      const result = await buildDataset({ reader: await openReader(file, 'jsonl', 'text'), tokenizer, source: 'kjv.jsonl', ...UPLOAD_BUILD_DEFAULTS, onShard: async () => {} })
      tokens = result.trainTokens + result.validationTokens
    })
    rates[name] = mb / seconds
    counts[name] = tokens
    console.log(`${name.padEnd(8)} ${(mb / seconds).toFixed(2)} MB/s, ${(tokens / seconds / 1e6).toFixed(2)} M tokens/s, ${(mb * 1e6 / tokens).toFixed(2)} bytes per token (${(readOnly / seconds).toFixed(2)}× reading alone)`)
  }
  if (counts.gpt2 !== counts['gpt2, whole documents']) throw new Error(`the two GPT-2 paths disagree: ${counts.gpt2} and ${counts['gpt2, whole documents']} tokens`)
  console.log(`piece by piece with a cache: ${(rates.gpt2! / rates['gpt2, whole documents']!).toFixed(1)}× whole documents through the library`)
  console.log(`tokenize: gpt2 ${rates.gpt2!.toFixed(1)} MB/s of text, ${(rates.gpt2! / (mb / readOnly)).toFixed(2)}× reading the file alone (${(mb / readOnly).toFixed(1)} MB/s)`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
