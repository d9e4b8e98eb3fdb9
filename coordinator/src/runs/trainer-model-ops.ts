import {
  decodePseudoGradient, decodeSafetensors, encodeSafetensors, encodedByteLength, float32ToTensor, parseLlamaConfig, tensorToFloat32
} from '@barnraise/protocol'
import type { LlamaConfig } from '@barnraise/protocol'
import {
  DEMO_SHARD_OPTIONS, NesterovSGD, buildShards, checkpointFiles, countParams, createParamSet, decodeShard, demoCorpusShards, initParams,
  huggingFaceTextFiles, modelPresets, paramSetFromSafetensors, presetConfig, validationLoss, addTokenCounts, unigramBaselineLoss
} from '@barnraise/trainer'
import type { ModelOps } from './model-ops.ts'

function config (json: Record<string, unknown>): LlamaConfig {
  return parseLlamaConfig(json)
}

/** Model operations backed by the TypeScript numeric core in @barnraise/trainer. */
export const trainerModelOps: ModelOps = {
  encodedByteLength,
  decode: (codec, bytes, length) => decodePseudoGradient(codec, bytes, length),
  readCheckpoint: (json, bytes) => paramSetFromSafetensors(config(json), bytes).flat,
  writeCheckpoint: (json, flat) => checkpointFiles(createParamSet(config(json), flat), { dtype: 'F32' }).get('model.safetensors') as Uint8Array,
  readVector: (bytes, length) => {
    const entry = decodeSafetensors(bytes).tensors.get('values')
    if (entry === undefined || entry.shape[0] !== length) throw new Error(`optimizer state does not hold ${length} values`)
    return tensorToFloat32(entry)
  },
  writeVector: (values) => encodeSafetensors(new Map([['values', float32ToTensor(values, [values.length])]])),
  outerStep: (theta, meanDelta, momentum, opts) => {
    const outer = new NesterovSGD(theta.length, opts)
    if (momentum !== null) outer.importState({ step: 1, buffer: momentum })
    outer.step(theta, meanDelta)
    return outer.exportState().buffer!
  },
  evaluate: (json, flat, tokens, opts) => validationLoss(createParamSet(config(json), flat), tokens, opts),
  unigramBaseline: (train, validation, vocabSize, opts) => {
    const counts = new Float64Array(vocabSize)
    for (const shard of train) addTokenCounts(counts, shard)
    return unigramBaselineLoss(counts, validation, opts)
  },
  readShard: (bytes) => decodeShard(bytes).tokens,
  resolveModel: (model) => {
    const c = 'preset' in model ? presetConfig(model.preset) : config(model.config)
    return { config: { ...c }, paramCount: countParams(c), vocabSize: c.vocab_size }
  },
  // Checkpoints are stored as F32 safetensors, so config.json says float32.
  huggingFaceTextFiles: (json) => new Map([...huggingFaceTextFiles(config(json), 'F32')].map(([name, text]) => [name, new TextEncoder().encode(text)])),
  initialCheckpoint: (json, seed) => trainerModelOps.writeCheckpoint(json, initParams(config(json), seed).flat),
  presets: () => Object.entries(modelPresets).map(([name, c]) => ({ name, config: { ...c }, paramCount: countParams(c) })),
  textShards: (text) => {
    const built = buildShards(text, DEMO_SHARD_OPTIONS)
    return {
      train: built.train.map((s) => ({ bytes: s.bytes, tokens: s.manifest.tokens })),
      validation: { bytes: built.validation.bytes, tokens: built.validation.manifest.tokens },
      vocabSize: 256
    }
  },
  demoShards: async () => {
    const shards = await demoCorpusShards()
    return {
      train: shards.train.map((s) => ({ bytes: s.bytes, tokens: s.tokens.length })),
      validation: { bytes: shards.validation.bytes, tokens: shards.validation.tokens.length },
      vocabSize: shards.vocabSize
    }
  }
}
