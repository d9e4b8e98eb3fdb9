import { encodePseudoGradient, parseLlamaConfig } from '@barnraise/protocol'
import { decodeShard, paramSetFromSafetensors, sha256Hex } from '@barnraise/trainer'
import type { AgentModelOps } from './agent-model-ops.ts'

/** The agent's model operations, backed by @barnraise/trainer and the protocol codecs. */
export const trainerAgentOps: AgentModelOps = {
  readCheckpoint: (config, bytes) => paramSetFromSafetensors(parseLlamaConfig(config), bytes).flat,
  readShard: (bytes) => decodeShard(bytes).tokens,
  encode: (codec, values) => encodePseudoGradient(codec, values),
  sha256: sha256Hex
}
