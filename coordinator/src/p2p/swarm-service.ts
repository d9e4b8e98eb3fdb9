import { BLOB_CHUNK_BYTES, JsonStream, ProtocolError, REQUEST_TIMEOUT_MS, SWARM_PROTOCOL, blockCount, swarmRequestSchema } from '@barnraise/protocol'
import type { SwarmPeer, SwarmResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { BlockDigests } from '../blobs/block-digests.ts'
import { touchNode } from '../nodes/nodes.ts'
import { ProtocolService } from './protocol-service.ts'
import type { ProtocolComponents } from './protocol-service.ts'
import { mayFetchBlob, mayServeBlob } from './peer-access.ts'
import { refusalFor } from './reply-refusal.ts'
import { SwarmTracker } from './swarm-tracker.ts'

export interface SwarmServiceComponents extends ProtocolComponents {
  db: Kysely<Database>
  blobs: BlobStore
  digests: BlockDigests
  log: Logger
  /** Counts answers (--metrics): with peers to ask, or alone. */
  onAnswered?: (withPeers: boolean) => void
}

/**
 * Serves `/barnraise/swarm/1.0.0`, the tracker of peer exchange: for a blob the asking node may
 * fetch (the same rule as the blob service), its size and block digests, the other nodes that
 * asked for it and where they listen, and which blocks this node takes from the coordinator;
 * and a node's word that it no longer holds a blob.
 * Agents then exchange the blocks between themselves (`/barnraise/blocks/1.0.0`) and verify each against its digest; the
 * coordinator stays the source of last resort through the blob service.
 */
export class SwarmService extends ProtocolService {
  readonly #c: SwarmServiceComponents
  readonly tracker: SwarmTracker

  constructor (components: SwarmServiceComponents) {
    super(components, SWARM_PROTOCOL)
    this.#c = components
    this.tracker = new SwarmTracker({ isOnline: (peerId) => this.#connectedHost(peerId) !== undefined })
  }

  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    // swarm: join a blob's swarm (peers, a seed share, the block digests); swarm-leave: no longer
    // hold it; swarm-hold: hold all of it, made or fetched outside the swarm; swarm-member: may
    // another peer have it (asked before serving that peer blocks).
    const peerId = connection.remotePeer.toString()
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    let digests: Uint8Array | undefined
    let reply: SwarmResponse
    try {
      const request = await messages.read(swarmRequestSchema, REQUEST_TIMEOUT_MS)
      await touchNode(this.#c.db, peerId)
      if (request.type === 'swarm-leave') {
        // Only ever the asker's own membership, so it needs no other check.
        this.tracker.leave(request.sha256, peerId)
        await messages.write({ ok: true, left: true })
        await messages.close()
        return
      }
      // One answer for "not yours" and "not here", as on the blob protocol. A holder passes the
      // same check as an asker: only a node whose unit names the blob is offered to others.
      if (!await mayFetchBlob(this.#c.db, peerId, request.sha256) || !await mayServeBlob(this.#c.db, peerId, request.sha256)) {
        throw new ProtocolError('ERR_NOT_ASSIGNED', `blob ${request.sha256} is not part of any work unit assigned to this node`)
      }
      const size = await this.#c.blobs.size(request.sha256)
      if (size === undefined) throw new ProtocolError('ERR_NOT_ASSIGNED', `blob ${request.sha256} is not part of any work unit assigned to this node`)
      if (request.type === 'swarm-member') {
        // Asked only by a node that may hold the blob itself (checked above), so nobody learns
        // from it who works on what they could not have.
        const member = await mayFetchBlob(this.#c.db, request.peerId, request.sha256) && await mayServeBlob(this.#c.db, request.peerId, request.sha256)
        await messages.write({ ok: true, member })
        await messages.close()
        return
      }
      if (request.type === 'swarm-hold') {
        // Its word that it holds every block is checked by each asker, block by block, against
        // the digests: a node that lies is dropped by its peers and costs them a stall.
        this.tracker.hold(request.sha256, peerId, blockCount(size))
        await messages.write({ ok: true, held: true })
        await messages.close()
        return
      }
      digests = await this.#c.digests.of(request.sha256)
      const count = blockCount(size)
      const joined = this.tracker.join(request.sha256, peerId, count, await expectedFetchers(this.#c.db, request.sha256))
      const relays = this.#relaysFor(peerId)
      const peers = joined.peers.map((id) => this.#peer(id, relays)).filter((p): p is SwarmPeer => p !== undefined)
      this.#c.onAnswered?.(peers.length > 0)
      reply = { ok: true, size, blockBytes: 1024 * 1024, blockCount: count, peers, seed: joined.seed }
    } catch (err) {
      const refusal = refusalFor(err)
      if (refusal.code === 'ERR_INTERNAL') this.#c.log.child('swarm').error('swarm request failed', { peerId, err })
      reply = refusal
      digests = undefined
    }
    try {
      await messages.write(reply)
      if (digests !== undefined) {
        for (let i = 0; i < digests.byteLength; i += BLOB_CHUNK_BYTES) await messages.writeFrame(digests.subarray(i, i + BLOB_CHUNK_BYTES), REQUEST_TIMEOUT_MS)
      }
      await messages.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** The host a peer's open connection comes from, or undefined when it is not connected. */
  #connectedHost (peerId: string): string | undefined {
    try {
      const open = this.#c.libp2p.getConnections(peerIdFromString(peerId)).find((c) => c.status === 'open')
      return open === undefined ? undefined : hostOf(open.remoteAddr.toString())
    } catch {
      return undefined
    }
  }

  /**
   * A member with the addresses it announced (identify) that sit on the host its connection to
   * the coordinator comes from, so a node cannot point its peers' dials at a third party, and
   * its slot on this coordinator's relay, at one of `relays`. A node behind NAT, whose announced
   * addresses are private, is offered through the relay only. Undefined when it has neither.
   */
  #peer (peerId: string, relays: ReadonlySet<string>): SwarmPeer | undefined {
    const host = this.#connectedHost(peerId)
    if (host === undefined) return undefined
    const announced = this.#addressBook.get(peerId) ?? []
    const direct = announced.filter((a) => hostOf(a) === host && !a.includes('/p2p-circuit'))
    // A slot on this coordinator's relay, the way to a node behind NAT (its peers dial through
    // the coordinator, then try a direct connection by hole punching). Its peers dial the part
    // before our peer id, which the node wrote: only an address of ours may stand there, or a
    // node could aim every agent of the run at any host (agents dial a relay's DNS name).
    const relayed = this.#relayPrefixes(announced).filter((a) => relays.has(a))
    const addrs = [...direct, ...new Set(relayed)].slice(0, 8)
    return addrs.length === 0 ? undefined : { peerId, addrs }
  }

  /** `addrs` that go through this coordinator's relay, cut after `/p2p-circuit`: `<how to reach the relay>/p2p/<our id>/p2p-circuit`. */
  #relayPrefixes (addrs: readonly string[]): string[] {
    const own = `/p2p/${this.#c.libp2p.peerId.toString()}/p2p-circuit`
    return addrs.filter((a) => a.includes(own)).map((a) => a.slice(0, a.indexOf(own) + own.length))
  }

  /**
   * The addresses of this coordinator's relay that may be offered to `asker`: those it listens
   * on, and those the asker itself reached it at (its own slot's addresses: behind a port
   * forward, the only ones it can dial). An address the asker wrote misleads only the asker.
   */
  #relaysFor (asker: string): Set<string> {
    const listening = this.#c.libp2p.getMultiaddrs().map((ma) => `${ma.toString()}/p2p-circuit`)
    return new Set([...listening, ...this.#relayPrefixes(this.#addressBook.get(asker) ?? [])])
  }

  /** Each connected peer's announced listen addresses (identify), bounded per peer. */
  readonly #addressBook = new Map<string, string[]>()

  #startAddressBook (): void {
    this.#c.libp2p.addEventListener('peer:identify', (evt) => {
      // Identify is announced after an await: a peer gone meanwhile had its disconnect already,
      // and its entry would stay until the same peer id disconnects again.
      if (this.#c.libp2p.getConnections(evt.detail.peerId).length === 0) return
      const addrs = evt.detail.listenAddrs.map((ma) => ma.toString()).filter((a) => a.length <= 256).slice(0, 16)
      this.#addressBook.set(evt.detail.peerId.toString(), addrs)
    })
    this.#c.libp2p.addEventListener('peer:disconnect', (evt) => { this.#addressBook.delete(evt.detail.toString()) })
  }

  override async start (): Promise<void> {
    this.#startAddressBook()
    await super.start()
  }
}

/** The IP (or DNS name) of a multiaddr like /ip4/1.2.3.4/tcp/5, or undefined. */
function hostOf (multiaddr: string): string | undefined {
  return /^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)/.exec(multiaddr)?.[1]
}

/** How many nodes hold an open unit that names the blob: its base checkpoint or one of its shards. */
async function expectedFetchers (db: Kysely<Database>, sha256: string): Promise<number> {
  const row = await db.selectFrom('assignments')
    .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
    .select((eb) => eb.fn.count<string>(sql`distinct assignments.node_id`).as('n'))
    .where('rounds.status', '=', 'open').where('assignments.status', '=', 'assigned')
    .where((eb) => eb.or([
      eb('rounds.base_checkpoint', '=', sha256),
      eb(sql<boolean>`assignments.ranges @> ${JSON.stringify([{ shard: sha256 }])}::jsonb`, '=', true)
    ]))
    .executeTakeFirst()
  return Number(row?.n ?? 1)
}
