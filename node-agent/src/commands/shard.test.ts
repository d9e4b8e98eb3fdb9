import { test, onTestFinished } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { datasetManifestSchema, runSpecSchema } from '@barnraise/protocol'
import { UPLOAD_BUILD_DEFAULTS, buildDataset, catalogTokenizer, openReaders, parseDocumentIndex } from '@barnraise/datasets'
import { decodeShard, sha256Hex } from '@barnraise/trainer'
import { runShardCommand } from './shard.ts'

function capture (): { io: { stdout: { write: (s: string) => boolean }, stderr: { write: (s: string) => boolean } }, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { stdout: { write: (s) => out.push(s) > 0 }, stderr: { write: (s) => err.push(s) > 0 } }, out, err }
}

test('shard writes content-named shards and a manifest that describes them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-shard-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  const a = Array.from({ length: 150 }, (_, i) => String(i).padStart(4, '0')).join('') // 600 bytes, no newline
  assert.equal(a.length, 600)
  await writeFile(join(dir, 'a.txt'), a)
  await writeFile(join(dir, 'b.txt.gz'), gzipSync('y'.repeat(399) + '\n'))
  const out = join(dir, 'out')
  const c = capture()
  const code = await runShardCommand(['--out', out, '--shard-tokens', '250', '--validation-fraction', '0.1', join(dir, 'a.txt'), join(dir, 'b.txt.gz')], c.io)
  assert.equal(code, 0, c.err.join(''))
  assert.match(c.out.join(''), /wrote 4 train shards \(900 tokens\) and 1 validation shard \(101 tokens\)/)
  const manifest = datasetManifestSchema.parse(JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')))
  assert.deepEqual(manifest.sources, ['a.txt', 'b.txt.gz'])
  assert.deepEqual(manifest.train.map((s) => s.tokens), [250, 250, 250, 150])
  const files = await readdir(out)
  assert.equal(files.length, 6, 'five distinct shards plus the manifest')
  let text = ''
  for (const s of [...manifest.train, manifest.validation]) {
    const bytes = new Uint8Array(await readFile(join(out, `${s.sha256}.shard`)))
    assert.equal(sha256Hex(bytes), s.sha256)
    assert.equal(bytes.byteLength, s.bytes)
    text += new TextDecoder().decode(decodeShard(bytes).tokens as Uint8Array)
  }
  // a.txt had no trailing newline, so one was added between the files
  assert.equal(text, a + '\n' + 'y'.repeat(399) + '\n')
})

test('shard explains bad usage and unreadable input', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-shard-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'a.txt'), 'hello world')
  const cases: Array<[string[], number, RegExp]> = [
    [[join(dir, 'a.txt')], 2, /--out DIR is required/],
    [['--out', dir], 2, /at least one/],
    [['--out', dir, '--shard-tokens', 'lots', join(dir, 'a.txt')], 2, /--shard-tokens/],
    [['--out', dir, '--validation-fraction', '0.9', join(dir, 'a.txt')], 2, /--validation-fraction/],
    [['--out', dir, '--bogus', join(dir, 'a.txt')], 2, /bogus/],
    [['--out', dir, join(dir, 'missing.txt')], 1, /cannot read input/],
    [['--out', dir, join(dir, 'a.txt'), '--validation-fraction', '0.01'], 0, /^$/]
  ]
  for (const [argv, want, message] of cases) {
    const c = capture()
    assert.equal(await runShardCommand(argv, c.io), want, argv.join(' '))
    assert.match(c.err.join(''), message)
  }
  const empty = join(dir, 'empty.txt')
  await writeFile(empty, '')
  const c = capture()
  assert.equal(await runShardCommand(['--out', dir, empty], c.io), 1)
  assert.match(c.err.join(''), /too small/)
})

test('shard --tokenizer: one JSONL file into BPE shards, a document index and the run spec\'s URL dataset', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-shard-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  const rows = Array.from({ length: 120 }, (_, i) => JSON.stringify({ body: `Row ${i}: the quick brown fox jumps over the lazy dog.` }))
  rows.splice(3, 0, '{broken')
  await writeFile(join(dir, 'rows.jsonl'), rows.join('\n'))
  const out = join(dir, 'out')
  const c = capture()
  const code = await runShardCommand(['--out', out, '--tokenizer', 'gpt2-1k', '--field', 'body', '--shard-tokens', '500', '--base-url', 'https://data.example.org/rows', join(dir, 'rows.jsonl')], c.io)
  assert.equal(code, 0, c.err.join(''))
  assert.match(c.out.join(''), /wrote \d+ train shards \(\d+ tokens, 120 documents, 1 bad row\)/)
  assert.match(c.err.join(''), /skipped line 4: not JSON/)
  const manifest = datasetManifestSchema.parse(JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')))
  assert.equal(manifest.tokenizer, 'gpt2-1k')
  assert.equal(manifest.vocabSize, 1025)
  const spec = runSpecSchema.parse({ name: 'from urls', rounds: 1, dataset: JSON.parse(await readFile(join(out, 'urls.json'), 'utf8')) })
  assert.equal(spec.dataset.source, 'urls')
  if (spec.dataset.source !== 'urls') return
  assert.equal(spec.dataset.train.length, manifest.train.length)
  for (const s of spec.dataset.train) {
    assert.equal(s.url, `https://data.example.org/rows/${s.sha256}.shard`)
    const bytes = await readFile(join(out, `${s.sha256}.shard`))
    assert.equal(sha256Hex(bytes), s.sha256)
    assert.equal(decodeShard(bytes).tokens.length, s.tokens)
  }
  const index = JSON.parse(await readFile(join(out, 'documents.json'), 'utf8')) as { documents: unknown[], heldOut: string[] }
  assert.equal(index.documents.length + index.heldOut.length, 120)
  // urls.json names the index too, by URL and sha256, for the coordinator's provenance.
  assert.deepEqual(spec.dataset.documents, { url: 'https://data.example.org/rows/documents.json', sha256: sha256Hex(await readFile(join(out, 'documents.json'))) })

  const bad = capture()
  assert.equal(await runShardCommand(['--out', out, '--tokenizer', 'llama-9', join(dir, 'rows.jsonl')], bad.io), 2)
  assert.match(bad.err.join(''), /--tokenizer: "llama-9" is neither a tokenizer here \(byte, gpt2-1k, gpt2\) nor a tokenizer.json file/)
  assert.equal(await runShardCommand(['--out', out, '--tokenizer', 'gpt2-1k', '--base-url', 'ftp://x', join(dir, 'rows.jsonl')], capture().io), 2)

  // Several files in one format make one dataset; each document's locator names its file.
  await writeFile(join(dir, 'more.jsonl'), rows.slice(0, 30).join('\n'))
  const both = join(dir, 'both')
  const two = capture()
  assert.equal(await runShardCommand(['--out', both, '--tokenizer', 'gpt2-1k', '--field', 'body', join(dir, 'rows.jsonl'), join(dir, 'more.jsonl')], two.io), 0, two.err.join(''))
  assert.match(two.out.join(''), /149 documents, 2 bad rows/)
  assert.deepEqual(datasetManifestSchema.parse(JSON.parse(await readFile(join(both, 'manifest.json'), 'utf8'))).sources, ['rows.jsonl', 'more.jsonl'])
  const bothIndex = JSON.parse(await readFile(join(both, 'documents.json'), 'utf8')) as { source: string, documents: Array<[string, number, number]> }
  assert.equal(bothIndex.source, 'rows.jsonl and 1 more')
  assert.equal(bothIndex.documents[0]![0], 'rows.jsonl: line 1')
  assert.equal(bothIndex.documents.at(-1)![0], 'more.jsonl: line 30')
  const mixed = capture()
  await writeFile(join(dir, 'notes.txt'), 'plain text')
  assert.equal(await runShardCommand(['--out', both, '--tokenizer', 'gpt2-1k', join(dir, 'rows.jsonl'), join(dir, 'notes.txt')], mixed.io), 2)
  assert.match(mixed.err.join(''), /every dataset file must be in one format: rows\.jsonl reads as jsonl, notes\.txt as text/)
})

test('shard --tokenizer writes the document index as documents arrive: the same file as the index held whole, every document in it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-shard-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  // Two files of 40,000 short paragraphs: over a megabyte of index JSON, so the writer gzips
  // several blocks into its part file before the index is written.
  const paragraphs = (n: number, tag: string): string => Array.from({ length: n }, (_, i) => `${tag} ${i} "q"`).join('\n\n') + '\n'
  await writeFile(join(dir, 'a.txt'), paragraphs(40_000, 'alpha'))
  await writeFile(join(dir, 'b.txt'), paragraphs(40_000, 'beta'))
  const files = [join(dir, 'a.txt'), join(dir, 'b.txt')]
  const out = join(dir, 'out')
  const c = capture()
  assert.equal(await runShardCommand(['--out', out, '--tokenizer', 'byte', '--shard-tokens', '65536', '--base-url', 'https://data.example.org/p/', ...files], c.io), 0, c.err.join(''))
  assert.match(c.out.join(''), /80000 documents, 0 bad rows/)
  const written = await readFile(join(out, 'documents.json'), 'utf8')
  // The same input built with its index held whole, as the command did before.
  const whole = await buildDataset({ reader: await openReaders(files, 'text', null), tokenizer: catalogTokenizer('byte'), source: 'a.txt and 1 more', ...UPLOAD_BUILD_DEFAULTS, shardTokens: 65536, onShard: async () => {} })
  assert.equal(whole.index.documents.length, 80_000 - 80_000 / UPLOAD_BUILD_DEFAULTS.holdOutEvery)
  const expected = JSON.stringify(whole.index) + '\n'
  assert.ok(expected.length > 1024 * 1024, 'more than one block of documents')
  // Compared whole, reported by length and first difference: the strings are megabytes.
  const differsAt = [...Array(Math.max(written.length, expected.length)).keys()].find((i) => written[i] !== expected[i])
  assert.deepEqual({ length: written.length, differsAt }, { length: expected.length, differsAt: undefined })
  const index = parseDocumentIndex(JSON.parse(written))
  assert.equal(index.documents[0]![0], 'a.txt: line 1')
  assert.equal(index.documents.at(-1)![0], 'b.txt: line 79997', 'the last paragraph is the 80,000th document, held out')
  assert.deepEqual(index.shards, JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')).train.map((s: { sha256: string, tokens: number }) => ({ sha256: s.sha256, tokens: s.tokens })))
  const urls = JSON.parse(await readFile(join(out, 'urls.json'), 'utf8')) as { documents: { url: string, sha256: string } }
  assert.deepEqual(urls.documents, { url: 'https://data.example.org/p/documents.json', sha256: sha256Hex(Buffer.from(written)) })
  assert.ok(!(await readdir(out)).includes('documents.json.part'), 'the part file is gone')

  // A build that fails leaves no part file behind (the train shards it wrote stay, as before).
  const few = join(dir, 'few')
  await writeFile(join(dir, 'few.txt'), paragraphs(10, 'few'))
  const failed = capture()
  assert.equal(await runShardCommand(['--out', few, '--tokenizer', 'byte', join(dir, 'few.txt')], failed.io), 1)
  assert.match(failed.err.join(''), /needs at least 50/)
  assert.deepEqual((await readdir(few)).filter((f) => f.startsWith('documents')), [])
})
