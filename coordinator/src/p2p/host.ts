import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

export interface HostOptions {
  privateKey: PrivateKey
  /** e.g. `/ip4/127.0.0.1/tcp/0` */
  listen: string[]
}

/** The coordinator's libp2p host: TCP, noise, yamux, identify and ping. */
export async function createCoordinatorHost (options: HostOptions): Promise<Libp2p> {
  return await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: options.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
    connectionManager: { maxConnections: 1000 }
  })
}
