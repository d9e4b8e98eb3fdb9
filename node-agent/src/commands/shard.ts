import { parseArgs } from 'node:util'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { datasetManifestSchema } from '@barnraise/protocol'
import type { DatasetManifest } from '@barnraise/protocol'
import { BYTE_VOCAB_SIZE, buildShardsFromTokens, DEMO_SHARD_OPTIONS, ShardError } from '@barnraise/trainer'

const USAGE = 'usage: barnraise-agent shard --out DIR [--shard-tokens N] [--validation-fraction F] FILE...'

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
      options: {
        out: { type: 'string' },
        'shard-tokens': { type: 'string', default: String(DEMO_SHARD_OPTIONS.shardTokens) },
        'validation-fraction': { type: 'string', default: String(DEMO_SHARD_OPTIONS.validationFraction) }
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
