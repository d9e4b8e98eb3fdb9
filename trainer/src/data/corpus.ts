// The demo corpus shipped in the repository: the King James Bible as gzipped UTF-8 text.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { BYTE_VOCAB_SIZE, encodeBytes } from './byte-tokenizer.ts'
import { buildShardsFromTokens } from './shard.ts'
import type { BuiltShard, ShardOptions } from './shard.ts'

/** Absolute path of data/corpus/kjv.txt.gz (resolved from this file, not the working directory). */
export const DEMO_CORPUS_PATH = fileURLToPath(new URL('../../../data/corpus/kjv.txt.gz', import.meta.url))

/** How the demo corpus is sharded: 256 Ki-token train shards, the last 2% held out. */
export const DEMO_SHARD_OPTIONS: ShardOptions = { shardTokens: 256 * 1024, validationFraction: 0.02 }

/** The demo corpus text. */
export async function loadDemoCorpus (): Promise<string> {
  return new TextDecoder('utf-8', { fatal: true }).decode(gunzipSync(await readFile(DEMO_CORPUS_PATH)))
}

/** A demo shard: its file bytes and manifest, plus its tokens ready for a sampler or evaluation. */
export interface DemoShard extends BuiltShard { tokens: Uint8Array }

let cached: Promise<{ train: DemoShard[], validation: DemoShard, vocabSize: number }> | undefined

/**
 * The demo corpus, byte-tokenized and sharded with DEMO_SHARD_OPTIONS. Deterministic (same
 * bytes, same hashes on every machine), and built once per process.
 */
export async function demoCorpusShards (): Promise<{ train: DemoShard[], validation: DemoShard, vocabSize: number }> {
  cached ??= (async () => {
    const tokens = encodeBytes(await loadDemoCorpus())
    const { train, validation } = buildShardsFromTokens(tokens, BYTE_VOCAB_SIZE, DEMO_SHARD_OPTIONS)
    // Shards are cut in order, so each one's tokens are the next slice of the corpus.
    let at = 0
    const withTokens = (s: BuiltShard): DemoShard => {
      const slice = tokens.subarray(at, at + s.manifest.tokens)
      at += s.manifest.tokens
      return { ...s, tokens: slice }
    }
    const trainShards = train.map(withTokens)
    return { train: trainShards, validation: withTokens(validation), vocabSize: BYTE_VOCAB_SIZE }
  })()
  return await cached
}
