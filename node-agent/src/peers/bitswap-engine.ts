import { withBitswap } from '@helia/bitswap'
import type { BitswapBlockBrokerInit } from '@helia/bitswap'
import { PEER_BLOCKS_PROTOCOL } from '@barnraise/protocol'
import type { Libp2p } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Blockstore } from 'interface-blockstore'

/** What the agent uses of Bitswap: ask for a block, and tell peers waiting for one that it is here. */
export interface BlockExchange {
  want: (cid: CID, signal: AbortSignal) => Promise<Uint8Array>
  announce: (cid: CID) => Promise<void>
  stop: () => Promise<void>
}

interface Mixin { start: (helia: unknown) => Promise<void> }
interface Broker {
  retrieve: (cid: CID, options: { signal: AbortSignal }) => Promise<Uint8Array>
  announce: (cid: CID) => Promise<void>
  stop: () => Promise<void>
}

/**
 * Runs Helia's Bitswap (`@helia/bitswap`) on the agent's own libp2p host, without the rest of
 * Helia: the package exposes Bitswap only as a mixin for a Helia node, so this hands it the few
 * parts it reads (host, blockstore, logger, hasher, and a routing that finds nobody, because the
 * coordinator's swarm protocol says which peers to dial). It speaks Bitswap 1.2's own protocol
 * id (the package dials no other), but an agent never announces to or searches the IPFS
 * network, so it trades blocks only with the peers it was pointed at (and those that dial it).
 */
export async function startBitswap (libp2p: Libp2p, blockstore: Blockstore): Promise<BlockExchange> {
  let mixin: Mixin | undefined
  let broker: Broker | undefined
  const noRouting = {
    async * findProviders () {},
    async provide () {},
    async cancelReprovide () {},
    async put () {},
    async get (): Promise<never> { throw new Error('no routing') },
    async findPeer (): Promise<never> { throw new Error('no routing') },
    async * getClosestPeers () {}
  }
  const host = {
    status: 'starting',
    libp2p,
    blockstore,
    routing: noRouting,
    logger: defaultLogger(),
    getHasher: async (code: number) => {
      if (code === sha256.code) return sha256
      throw new Error(`blocks are addressed by sha256 only, not hash 0x${code.toString(16)}`)
    },
    addMixin: (m: Mixin) => { mixin = m },
    hasBlockBroker: () => broker !== undefined,
    addBlockBroker: (b: Broker) => { broker = b }
  }
  const init = {
    protocols: [PEER_BLOCKS_PROTOCOL],
    // A 1 MiB block and its framing fit; more is a peer misbehaving.
    maxIncomingMessageSize: 4 * 1024 * 1024,
    maxOutgoingMessageSize: 4 * 1024 * 1024,
    maxInboundStreams: 64,
    maxOutboundStreams: 64,
    // Blocks of a 1 MiB size take longer than the 10 s default over a slow home uplink.
    sendBlocksTimeout: 120_000,
    messageSendTimeout: 120_000,
    messageReceiveTimeout: 120_000
  } as BitswapBlockBrokerInit
  withBitswap(host as never, init)
  if (mixin === undefined) throw new Error('@helia/bitswap did not register itself')
  await mixin.start(host)
  const started = broker
  if (started === undefined) throw new Error('@helia/bitswap did not start')
  return {
    want: async (cid, signal) => await started.retrieve(cid, { signal }),
    announce: async (cid) => { await started.announce(cid) },
    stop: async () => { await started.stop() }
  }
}
