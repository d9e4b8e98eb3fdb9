import type { CodecName } from '@barnraise/protocol'

/** What the agent needs from the numeric core and codecs, besides the executor. */
export interface AgentModelOps {
  readCheckpoint: (config: Record<string, unknown>, bytes: Uint8Array) => Float32Array
  readShard: (bytes: Uint8Array) => ArrayLike<number>
  encode: (codec: CodecName, values: Float32Array) => Uint8Array
  sha256: (bytes: Uint8Array) => string
}
