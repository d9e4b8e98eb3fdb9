import { createHash } from 'node:crypto'
import { encodePseudoGradient, parseLlamaConfig } from '@barnraise/protocol'
import { decodeShard, paramSetFromSafetensors } from '@barnraise/trainer'
import type { AgentModelOps } from './agent-model-ops.ts'

/** The agent's model operations, backed by @barnraise/trainer and the protocol codecs. */
export const trainerAgentOps: AgentModelOps = {
  readCheckpoint: (config, bytes) => paramSetFromSafetensors(parseLlamaConfig(config), bytes).flat,
  readShard: (bytes) => decodeShard(bytes).tokens,
  encode: (codec, values) => encodePseudoGradient(codec, values),
  sha256: (bytes) => createHash('sha256').update(bytes).digest('hex')
}
