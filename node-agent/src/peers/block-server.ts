import { BLOB_CHUNK_BYTES, JsonStream, PEER_BLOCKS_PROTOCOL, ProtocolError, REQUEST_TIMEOUT_MS, encodeBitfield, parseIpv6, peerBlockRequestSchema } from '@barnraise/protocol'
import type { PeerBlockResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { BlockIndex } from './block-index.ts'
import type { Permission } from './peer-permissions.ts'

/** Blocks being sent at once, to all peers together: a donor's uplink is shared, not handed to whoever asks most. */
const MAX_UPLOADS = 8
/** Concurrent streams one connection may hold on this protocol. */
const MAX_STREAMS_PER_CONNECTION = 4
/** A 1 MiB block that takes longer than this to send goes to a peer too slow to wait for. */
const BLOCK_SEND_TIMEOUT_MS = 60_000

/**
 * Where an asker connects from, for the per-source budget of membership questions
 * (peer-permissions.ts): its IPv4 address, its IPv6 /48, or, over the coordinator's relay (which
 * carries only enrolled nodes), its peer id. A /48, not a /64: a tunnel broker hands anyone a
 * /48 for free, 65,536 /64s that would each have had a budget of their own. Honest hosts of one
 * site share it, which costs them little: peers the tracker named are served without asking.
 */
export function askerSource (connection: Pick<Connection, 'remoteAddr' | 'remotePeer'>): string {
  const text = connection.remoteAddr.toString()
  if (text.includes('/p2p-circuit')) return `relayed/${connection.remotePeer.toString()}`
  const host = connection.remoteAddr.getComponents()[0]
  if (host?.value === undefined) return text
  if (host.name === 'ip6') return `ip6/${ipv6Site(host.value)}`
  return `${host.name}/${host.value}`
}

/** The first 48 bits of an IPv6 address, written out; an IPv4-mapped address is its IPv4 address. */
function ipv6Site (address: string): string {
  const groups = parseIpv6(address)
  // A multiaddr's ip6 is always valid; were it not, the whole text keys its own budget.
  if (groups === undefined) return address
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.')
  }
  return `${groups.slice(0, 3).map((g) => g.toString(16)).join(':')}::/48`
}

/**
 * Serves `/barnraise/blocks/1.0.0` to the run's other agents: which blocks of a blob this agent
 * holds, and one block at a time, only blocks it has verified, and only to a peer the
 * coordinator says may have the blob. Asking the coordinator is budgeted (peer-permissions.ts):
 * an asker past the budget is answered `ERR_BUSY` and asks again later. A peer that asks about a blob
 * this agent is fetching too is reported through `onAsked`, so the fetch can ask it in return
 * (the tracker names only the peers that asked before).
 */
export class BlockServer {
  readonly #libp2p: Libp2p
  readonly #index: BlockIndex
  readonly #onAsked: (sha256: string, peer: Connection) => void
  readonly #mayServe: (sha256: string, peerId: string, source: string, held: boolean) => Promise<Permission>
  #uploads = 0
  /** Blocks sent to peers, bytes. */
  sentBytes = 0

  /** `mayServe` says whether a peer, connected from `source`, may have a blob (the coordinator's word, cached and budgeted by the caller), or to come back later. */
  constructor (libp2p: Libp2p, index: BlockIndex, onAsked: (sha256: string, peer: Connection) => void, mayServe: (sha256: string, peerId: string, source: string, held: boolean) => Promise<Permission>) {
    this.#libp2p = libp2p
    this.#index = index
    this.#onAsked = onAsked
    this.#mayServe = mayServe
  }

  async start (): Promise<void> {
    await this.#libp2p.handle(PEER_BLOCKS_PROTOCOL, async (stream, connection) => { await this.#serve(stream, connection) }, {
      maxInboundStreams: MAX_STREAMS_PER_CONNECTION,
      // A peer behind NAT reaches this one through the coordinator's relay, a limited connection.
      runOnLimitedConnection: true
    })
  }

  async stop (): Promise<void> {
    await this.#libp2p.unhandle(PEER_BLOCKS_PROTOCOL)
  }

  async #serve (stream: Stream, connection: Connection): Promise<void> {
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    let uploading = false
    let streaming = false
    try {
      const request = await messages.read(peerBlockRequestSchema, REQUEST_TIMEOUT_MS)
      const held = this.#index.get(request.sha256)
      // Same answer for "never heard of it", "dropped it" and "not yours to have": a blob's
      // sha256 is public (run specs list their shards), so holding it is no right to it. Busy
      // (too many questions to the coordinator already) reads the same whether it is held or not.
      const verdict = await this.#mayServe(request.sha256, connection.remotePeer.toString(), askerSource(connection), held !== undefined)
      if (verdict === 'busy') throw new ProtocolError('ERR_BUSY', 'this agent is checking as many peers with the coordinator as it will at once; ask again later')
      if (held === undefined || verdict !== 'allowed') throw new ProtocolError('ERR_NOT_HELD', 'this agent does not hold that blob')
      this.#onAsked(request.sha256, connection)
      if (request.type === 'have') {
        await messages.write({ ok: true, have: encodeBitfield(held.present) } satisfies PeerBlockResponse)
      } else {
        if (this.#uploads >= MAX_UPLOADS) throw new ProtocolError('ERR_BUSY', 'this agent is sending as many blocks as it will at once; ask another peer or later')
        this.#uploads++
        uploading = true
        const bytes = await this.#index.readBlock(request.sha256, request.index)
        if (bytes === undefined) throw new ProtocolError('ERR_NOT_HELD', `this agent does not hold block ${request.index} of that blob`)
        await messages.write({ ok: true, have: encodeBitfield(held.present), bytes: bytes.byteLength } satisfies PeerBlockResponse)
        streaming = true
        const deadline = Date.now() + BLOCK_SEND_TIMEOUT_MS
        for (let i = 0; i < bytes.byteLength; i += BLOB_CHUNK_BYTES) {
          await messages.writeFrame(bytes.subarray(i, i + BLOB_CHUNK_BYTES), Math.max(1, deadline - Date.now()))
        }
        this.sentBytes += bytes.byteLength
      }
      await messages.close()
    } catch (err) {
      // Once bytes flow a JSON reply would read as data: cut the stream (the asker tries elsewhere).
      if (streaming) { stream.abort(err as Error); return }
      const reply = err instanceof ProtocolError
        ? { ok: false as const, code: err.code, message: err.message }
        : { ok: false as const, code: 'ERR_INTERNAL', message: 'this agent could not serve the request' }
      try {
        await messages.write(reply)
        await messages.close()
      } catch {
        stream.abort(err as Error)
      }
    } finally {
      if (uploading) this.#uploads--
    }
  }
}
