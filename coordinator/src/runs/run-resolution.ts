import type { Kysely } from 'kysely'
import type { LlamaConfig, RunSpec } from '@barnraise/protocol'
import { parseLlamaConfig } from '@barnraise/protocol'
import { countParams, demoCorpusShards, modelPresets, presetConfig } from '@barnraise/trainer'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import { initialCheckpointBytes } from '../checkpoints/checkpoint-weights.ts'
import type { ShardInfo } from './runs.ts'

/** Where a run's model, dataset and initial checkpoint are resolved and stored. */
export interface RunStore { db: Kysely<Database>, blobs: BlobStore }

/** The named model sizes organizers pick from, with parameter counts. */
export function modelPresetList (): Array<{ name: string, config: LlamaConfig, paramCount: number }> {
  return Object.entries(modelPresets).map(([name, config]) => ({ name, config: { ...config }, paramCount: countParams(config) }))
}

/** A spec's model as a full config: a named preset or a config.json, validated. */
export function resolveModel (model: RunSpec['model']): { config: LlamaConfig, paramCount: number } {
  const config = 'preset' in model ? presetConfig(model.preset) : parseLlamaConfig(model.config)
  return { config: { ...config }, paramCount: countParams(config) }
}

/** A spec's dataset as stored shards: the demo corpus (sharded and stored on first use) or shards already uploaded. */
export async function resolveDataset (store: RunStore, dataset: RunSpec['dataset']): Promise<{ train: ShardInfo[], validation: ShardInfo, vocabSize: number }> {
  const { db, blobs } = store
  if (dataset.source === 'demo-corpus') {
    const shards = await demoCorpusShards()
    const train: ShardInfo[] = []
    for (const s of shards.train) {
      train.push({ sha256: await storeBlob(db, blobs, s.bytes, 'shard', { tokens: s.tokens.length, vocabSize: shards.vocabSize }), tokens: s.tokens.length })
    }
    const v = shards.validation
    const validation = { sha256: await storeBlob(db, blobs, v.bytes, 'shard', { tokens: v.tokens.length, vocabSize: shards.vocabSize, split: 'validation' }), tokens: v.tokens.length }
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
}

/** Stores a run's round-0 checkpoint; returns its sha256. */
export async function storeInitialCheckpoint (store: RunStore, config: LlamaConfig, seed: number): Promise<string> {
  return await storeBlob(store.db, store.blobs, initialCheckpointBytes(config, seed), 'checkpoint', { initial: true })
}
