// Asking an agent, as another peer would, whether it holds a blob (the peer block protocol's
// `have`): the question whose answer depends on what the coordinator says of the asker.
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { JsonStream, PEER_BLOCKS_PROTOCOL, peerBlockResponseSchema } from '@barnraise/protocol'
import type { PeerBlockResponse } from '@barnraise/protocol'

/** `asker`'s `have` for `sha256` to the agent at `holder`, and its answer (10 s at most each way). */
export async function askHave (asker: Libp2p, holder: Multiaddr | Multiaddr[], sha256: string): Promise<PeerBlockResponse> {
  const stream = await asker.dialProtocol(holder, PEER_BLOCKS_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
  const messages = new JsonStream(stream)
  try {
    await messages.write({ type: 'have', sha256 })
    return await messages.read(peerBlockResponseSchema, 10_000)
  } finally {
    await messages.close().catch(() => {})
  }
}
