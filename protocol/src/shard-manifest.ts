// What describes a token shard (trainer/src/data/shard.ts holds the binary format) and the
// manifest.json the `shard` command writes next to the shard files.
import { z } from 'zod'

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256')

/** One shard file: its content hash (also its file name), size and token count. */
export const shardManifestSchema = z.object({
  name: z.string().min(1).max(200),
  sha256: sha256Hex,
  tokens: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  vocabSize: z.number().int().min(1).max(2 ** 31)
}).strict()

/** manifest.json of a sharded corpus: train shards in corpus order, and the held-out part (the tail, or every Nth document). */
export const datasetManifestSchema = z.object({
  format: z.literal('barnraise-shards-v1'),
  /** `byte`, a catalogue tokenizer's name, or sha256:<hex> of a tokenizer.json */
  tokenizer: z.string().min(1).max(80),
  vocabSize: z.number().int().min(1).max(2 ** 31),
  validationFraction: z.number().min(0).max(0.5),
  sources: z.array(z.string()).max(10_000),
  train: z.array(shardManifestSchema).max(1_000_000),
  validation: shardManifestSchema
}).strict()

export type ShardManifest = z.infer<typeof shardManifestSchema>
export type DatasetManifest = z.infer<typeof datasetManifestSchema>
