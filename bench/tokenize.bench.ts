// Tokenization throughput (MB of text per second) against reading the same file without
// tokenizing, measured in the same run: the JSONL reader alone, then the full dataset build
// (read, tokenize, shard, index) with each catalogue tokenizer. About 16 MB of KJV verses as JSONL.
//   bin/node bench/tokenize.bench.ts     (or: pnpm bench tokenize)
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { UPLOAD_BUILD_DEFAULTS, buildDataset, catalogTokenizer, openReader } from '@barnraise/datasets'

const root = fileURLToPath(new URL('..', import.meta.url))
const dir = await mkdtemp(join(tmpdir(), 'tokenize-bench-'))
try {
  const verses = gunzipSync(await readFile(join(root, 'data/corpus/kjv.txt.gz'))).toString('utf8').split('\n').filter((l) => l.trim() !== '')
  const rows: string[] = []
  for (let copy = 0; copy < 4; copy++) for (const v of verses) rows.push(JSON.stringify({ text: v }))
  const file = join(dir, 'kjv.jsonl')
  await writeFile(file, rows.join('\n') + '\n')
  const mb = Buffer.byteLength(rows.join('\n')) / 1e6

  // Best of two, so a cold file cache does not count against the first.
  const time = async (fn: () => Promise<void>): Promise<number> => {
    let best = Infinity
    for (let i = 0; i < 2; i++) {
      const t = performance.now()
      await fn()
      best = Math.min(best, (performance.now() - t) / 1000)
    }
    return best
  }
  const readOnly = await time(async () => {
    const reader = await openReader(file, 'jsonl', 'text')
    let n = 0
    for await (const item of reader.items()) if (item.kind === 'document') n += item.text.length
    if (n === 0) throw new Error('read nothing')
  })
  console.log(`reading ${mb.toFixed(1)} MB of JSONL without tokenizing: ${(mb / readOnly).toFixed(1)} MB/s`)
  const rates: Record<string, number> = {}
  for (const name of ['byte', 'gpt2-1k', 'gpt2']) {
    const tokenizer = catalogTokenizer(name)
    let tokens = 0
    const seconds = await time(async () => {
      const result = await buildDataset({ reader: await openReader(file, 'jsonl', 'text'), tokenizer, source: 'kjv.jsonl', ...UPLOAD_BUILD_DEFAULTS, onShard: async () => {} })
      tokens = result.trainTokens + result.validationTokens
    })
    rates[name] = mb / seconds
    console.log(`${name.padEnd(8)} ${(mb / seconds).toFixed(2)} MB/s, ${(tokens / seconds / 1e6).toFixed(2)} M tokens/s, ${(mb * 1e6 / tokens).toFixed(2)} bytes per token (${(readOnly / seconds).toFixed(2)}× reading alone)`)
  }
  console.log(`tokenize: gpt2 ${rates.gpt2!.toFixed(1)} MB/s of text, ${(rates.gpt2! / (mb / readOnly)).toFixed(2)}× reading the file alone (${(mb / readOnly).toFixed(1)} MB/s)`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
