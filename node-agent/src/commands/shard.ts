import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { parseArgs } from 'node:util'
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { datasetManifestSchema, shardUrlRefusal } from '@barnraise/protocol'
import { DATASET_FORMATS, DatasetError, DocumentIndexWriter, TOKENIZER_CATALOG, TokenizerError, UPLOAD_BUILD_DEFAULTS, buildDataset, catalogTokenizer, openReaders, uploadedTokenizer } from '@barnraise/datasets'
import type { DatasetFormat } from '@barnraise/datasets'
import type { DatasetManifest } from '@barnraise/protocol'
import { BYTE_VOCAB_SIZE, buildShardsFromTokens, DEMO_SHARD_OPTIONS, ShardError } from '@barnraise/trainer'

const USAGE = `usage: barnraise-agent shard --out DIR [--shard-tokens N] [--validation-fraction F] FILE...
       barnraise-agent shard --out DIR --tokenizer NAME|FILE [--format text|jsonl|parquet] [--field F]
                             [--shard-tokens N] [--base-url URL] FILE...
  (several files, or a .tar of them, in one format make one dataset; locators name the file)`

export interface CommandIo { stdout: { write: (s: string) => unknown }, stderr: { write: (s: string) => unknown } }

/** Reads the input files as one byte stream (gunzipping .gz), ending each file with a newline so files never run together mid-line. */
async function readCorpus (files: string[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for (const file of files) {
    const raw = await readFile(file)
    const bytes = file.endsWith('.gz') ? gunzipSync(raw) : raw
    parts.push(bytes)
    if (bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) parts.push(new Uint8Array([0x0a]))
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

/** sha256 of a file, read as a stream: a document index can be hundreds of MiB. */
async function sha256OfFile (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/**
 * One dataset (one file, several, or a tar archive of them, all in one format), read and tokenized (a catalogue name or a tokenizer.json
 * path), into `<sha256>.shard` files, `manifest.json`, `documents.json` (which document every
 * train token came from, written as documents arrive: memory does not grow with their number)
 * and, with `--base-url`, `urls.json`: the run spec's `dataset` for shards served from that URL.
 */
async function shardWithTokenizer (o: { out: string, files: string[], shardTokens: number, tokenizer: string, format: string | undefined, field: string | undefined, baseUrl: string | undefined }, io: CommandIo, fail: (message: string) => number): Promise<number> {
  if (o.files.length === 0) return fail('give at least one dataset file')
  const file = o.files[0]!
  const formatOf = (f: string): string => o.format ?? (f.endsWith('.parquet') ? 'parquet' : /\.(jsonl|ndjson)$/.test(f) ? 'jsonl' : 'text')
  const format = formatOf(file) as DatasetFormat
  if (!DATASET_FORMATS.includes(format)) return fail(`--format must be one of ${DATASET_FORMATS.join(', ')}`)
  const other = o.files.find((f) => formatOf(f) !== format)
  if (other !== undefined) return fail(`every dataset file must be in one format: ${basename(file)} reads as ${format}, ${basename(other)} as ${formatOf(other)}; pass --format to say which`)
  if (o.baseUrl !== undefined && shardUrlRefusal(o.baseUrl, true) !== null) return fail(`--base-url: ${shardUrlRefusal(o.baseUrl, true)!}`)
  let tokenizer
  try {
    tokenizer = TOKENIZER_CATALOG.some((e) => e.name === o.tokenizer) ? catalogTokenizer(o.tokenizer) : uploadedTokenizer(await readFile(o.tokenizer))
  } catch (err) {
    const missing = (err as { code?: string }).code === 'ENOENT'
    return fail(`--tokenizer: ${missing ? `"${o.tokenizer}" is neither a tokenizer here (${TOKENIZER_CATALOG.map((e) => e.name).join(', ')}) nor a tokenizer.json file` : (err as Error).message}`)
  }
  await mkdir(o.out, { recursive: true })
  const documentsFile = join(o.out, 'documents.json')
  // The ingest's writer, with no byte budget (the disk is the caller's own): the index goes to disk as documents arrive.
  const index = new DocumentIndexWriter(`${documentsFile}.part`, () => {})
  let result
  try {
    result = await buildDataset({
      reader: await openReaders(o.files, format, o.field ?? (format === 'text' ? null : 'text')),
      tokenizer,
      source: o.files.length === 1 ? basename(file) : `${basename(file)} and ${o.files.length - 1} more`,
      ...UPLOAD_BUILD_DEFAULTS,
      shardTokens: o.shardTokens,
      onShard: async (bytes, m) => { await writeFile(join(o.out, `${m.sha256}.shard`), bytes) },
      onDocument: (locator, start, end) => index.add(locator, start, end)
    })
  } catch (err) {
    await index.discard()
    if (!(err instanceof DatasetError) && !(err instanceof TokenizerError)) throw err
    io.stderr.write(`barnraise-agent shard: ${err.message}\n`)
    return 1
  }
  const manifest: DatasetManifest = datasetManifestSchema.parse({
    format: 'barnraise-shards-v1',
    tokenizer: tokenizer.name,
    vocabSize: tokenizer.vocabSize,
    validationFraction: 1 / UPLOAD_BUILD_DEFAULTS.holdOutEvery,
    sources: o.files.map((f) => basename(f)),
    train: result.train,
    validation: result.validation
  })
  await writeFile(join(o.out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  // Plain JSON ending in a newline, as readers fetch it by URL and hash it; served, so readable as the shards are.
  await index.finish(result.index, documentsFile, { gzip: false, mode: 0o666 })
  await appendFile(documentsFile, '\n')
  if (o.baseUrl !== undefined) {
    const base = o.baseUrl.endsWith('/') ? o.baseUrl : `${o.baseUrl}/`
    const dataset = {
      source: 'urls',
      tokenizer: tokenizer.name,
      train: result.train.map((s) => ({ url: `${base}${s.sha256}.shard`, sha256: s.sha256, tokens: s.tokens })),
      validation: { url: `${base}${result.validation.sha256}.shard`, sha256: result.validation.sha256 },
      // The provenance of every train token: the coordinator fetches and checks it once.
      documents: { url: `${base}documents.json`, sha256: await sha256OfFile(documentsFile) }
    }
    await writeFile(join(o.out, 'urls.json'), JSON.stringify(dataset, null, 2) + '\n')
  }
  io.stdout.write(`wrote ${result.train.length} train shards (${result.trainTokens} tokens, ${result.documents} documents, ${result.badRows} bad row${result.badRows === 1 ? '' : 's'}) and 1 validation shard (${result.validationTokens} tokens) to ${o.out}${o.baseUrl !== undefined ? '; urls.json is the run spec\'s "dataset" for them' : ''}\n`)
  for (const e of result.badRowExamples.slice(0, 5)) io.stderr.write(`barnraise-agent shard: skipped ${e.locator}: ${e.reason}\n`)
  return 0
}

/**
 * `barnraise-agent shard --out DIR FILE...`: byte-tokenizes text (or .gz) files into shards
 * named `<sha256>.shard` plus `manifest.json`; the last fraction of the corpus is the validation shard.
 */
export async function runShardCommand (argv: string[], io: CommandIo = process): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      tokens: true,
      options: {
        out: { type: 'string' },
        'shard-tokens': { type: 'string', default: String(DEMO_SHARD_OPTIONS.shardTokens) },
        'validation-fraction': { type: 'string', default: String(DEMO_SHARD_OPTIONS.validationFraction) },
        tokenizer: { type: 'string' },
        format: { type: 'string' },
        field: { type: 'string' },
        'base-url': { type: 'string' }
      }
    })
  } catch (err) {
    io.stderr.write(`barnraise-agent shard: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
  const { values, positionals: files } = parsed
  const fail = (message: string): number => { io.stderr.write(`barnraise-agent shard: ${message}\n${USAGE}\n`); return 2 }
  if (values.out === undefined) return fail('--out DIR is required (where shards and manifest.json go)')
  if (files.length === 0) return fail('give at least one text or .gz file to shard')
  const shardTokens = Number(values['shard-tokens'])
  if (!Number.isSafeInteger(shardTokens) || shardTokens < 1) return fail(`--shard-tokens must be a positive integer, got ${values['shard-tokens']}`)
  const tokenized = values.tokenizer !== undefined || values.format !== undefined
  // Each flag belongs to one of the two ways to shard; on the other it would be silently ignored.
  if (tokenized && parsed.tokens.some((t) => t.kind === 'option' && t.name === 'validation-fraction')) {
    return fail('--validation-fraction is for byte shards; with --tokenizer or --format every dataset holds out the same share for validation, so leave it out')
  }
  if (!tokenized) {
    for (const flag of ['field', 'base-url'] as const) {
      if (values[flag] !== undefined) return fail(`--${flag} goes with --tokenizer NAME|FILE (or --format); byte shards without them have no ${flag === 'field' ? 'records to take a field from' : 'urls.json to write'}`)
    }
  }
  if (tokenized) {
    return await shardWithTokenizer({ out: values.out, files, shardTokens, tokenizer: values.tokenizer ?? 'byte', format: values.format, field: values.field, baseUrl: values['base-url'] }, io, fail)
  }
  const validationFraction = Number(values['validation-fraction'])
  if (!(validationFraction > 0 && validationFraction <= 0.5)) return fail(`--validation-fraction must be in (0, 0.5], got ${values['validation-fraction']}`)

  let corpus: Uint8Array
  try {
    corpus = await readCorpus(files)
  } catch (err) {
    io.stderr.write(`barnraise-agent shard: cannot read input: ${(err as Error).message}\n`)
    return 1
  }
  let shards
  try {
    shards = buildShardsFromTokens(corpus, BYTE_VOCAB_SIZE, { shardTokens, validationFraction })
  } catch (err) {
    if (!(err instanceof ShardError)) throw err
    io.stderr.write(`barnraise-agent shard: ${err.message}\n`)
    return 1
  }
  await mkdir(values.out, { recursive: true })
  for (const s of [...shards.train, shards.validation]) await writeFile(join(values.out, `${s.manifest.sha256}.shard`), s.bytes)
  const manifest: DatasetManifest = datasetManifestSchema.parse({
    format: 'barnraise-shards-v1',
    tokenizer: 'byte',
    vocabSize: BYTE_VOCAB_SIZE,
    validationFraction,
    sources: files.map((f) => basename(f)),
    train: shards.train.map((s) => s.manifest),
    validation: shards.validation.manifest
  })
  await writeFile(join(values.out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  const trainTokens = shards.train.reduce((n, s) => n + s.manifest.tokens, 0)
  io.stdout.write(`wrote ${shards.train.length} train shards (${trainTokens} tokens) and 1 validation shard (${shards.validation.manifest.tokens} tokens) to ${values.out}\n`)
  return 0
}
