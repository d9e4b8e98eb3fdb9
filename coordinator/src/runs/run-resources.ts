import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import type { ModelOps } from './model-ops.ts'
import type { RunResources } from './runs.ts'
import type { ShardInfo } from './runs.ts'

/** Resolves models, datasets and initial checkpoints against this coordinator's blob store. */
export function createRunResources (deps: { db: Kysely<Database>, blobs: BlobStore, ops: ModelOps }): RunResources {
  const { db, blobs, ops } = deps
  return {
    resolveModel: (model) => ops.resolveModel(model),
    resolveDataset: async (dataset) => {
      if (dataset.source === 'demo-corpus') {
        const shards = await ops.demoShards()
        const train: ShardInfo[] = []
        for (const s of shards.train) {
          train.push({ sha256: await storeBlob(db, blobs, s.bytes, 'shard', { tokens: s.tokens, vocabSize: shards.vocabSize }), tokens: s.tokens })
        }
        const validation = { sha256: await storeBlob(db, blobs, shards.validation.bytes, 'shard', { tokens: shards.validation.tokens, vocabSize: shards.vocabSize, split: 'validation' }), tokens: shards.validation.tokens }
        return { train, validation, vocabSize: shards.vocabSize }
      }
      const lookup = async (sha: string): Promise<ShardInfo & { vocabSize: number }> => {
        const row = await db.selectFrom('blobs').select(['kind', 'meta']).where('sha256', '=', sha).executeTakeFirst()
        if (row?.kind !== 'shard') throw new Error(`shard ${sha} is not in this coordinator's blob store; upload its text first`)
        return { sha256: sha, tokens: Number(row.meta.tokens), vocabSize: Number(row.meta.vocabSize) }
      }
      const train = await Promise.all(dataset.train.map(lookup))
      const validation = await lookup(dataset.validation)
      return { train, validation, vocabSize: Math.max(validation.vocabSize, ...train.map((s) => s.vocabSize)) }
    },
    initialCheckpoint: async (config, seed) => await storeBlob(db, blobs, ops.initialCheckpoint(config, seed), 'checkpoint', { initial: true })
  }
}
