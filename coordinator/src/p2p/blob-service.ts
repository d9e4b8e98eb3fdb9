import { BLOB_CHUNK_BYTES, BLOB_PROTOCOL, JsonStream, ProtocolError, REQUEST_TIMEOUT_MS, blobRequestSchema } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { touchNode } from '../nodes/nodes.ts'
import { transferDeadlineMs } from './peer-limits.ts'
import type { PeerLimits } from './peer-limits.ts'
import { ProtocolService } from './protocol-service.ts'
import type { ProtocolComponents } from './protocol-service.ts'
import { mayFetchBlob, mayServeBlob } from './peer-access.ts'
import { refusalFor } from './reply-refusal.ts'

export interface BlobServiceComponents extends ProtocolComponents {
  db: Kysely<Database>
  blobs: BlobStore
  log: Logger
  limits: PeerLimits
  /** Counts the bytes each accepted request will send (--metrics: coordinator egress for blobs). */
  onServed?: (bytes: number) => void
}

/**
 * Serves `/barnraise/blob/1.0.0`: checkpoints and shards by sha256, from an offset, in
 * frames of BLOB_CHUNK_BYTES (the rest of the blob, or `length` bytes of it), only to an enrolled node and only the blobs its own work units
 * name. A report is served only to the nodes scoring it. A reader too slow to take the bytes is cut off.
 */
export class BlobService extends ProtocolService {
  readonly #c: BlobServiceComponents

  constructor (components: BlobServiceComponents) {
    super(components, BLOB_PROTOCOL)
    this.#c = components
  }


  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    const log = this.#c.log.child('blob')
    const peerId = connection.remotePeer.toString()
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    let streaming = false
    try {
      const request = await messages.read(blobRequestSchema, REQUEST_TIMEOUT_MS)
      // Throws ERR_NOT_ENROLLED for strangers and revoked nodes.
      await touchNode(this.#c.db, peerId)
      // One answer for "not yours" and "not here", so a node cannot probe what else is stored.
      if (!await mayFetchBlob(this.#c.db, peerId, request.sha256)) {
        throw new ProtocolError('ERR_NOT_ASSIGNED', `blob ${request.sha256} is not part of any work unit assigned to this node`)
      }
      const servable = await mayServeBlob(this.#c.db, peerId, request.sha256)
      const size = servable ? await this.#c.blobs.size(request.sha256) : undefined
      if (size === undefined) throw new ProtocolError('ERR_MALFORMED_MESSAGE', `no blob ${request.sha256} here`)
      if (request.offset > size) throw new ProtocolError('ERR_MALFORMED_MESSAGE', `offset ${request.offset} is past the end (${size} bytes)`)
      // A length asks for one range (a block no peer delivered); the header still gives the whole size.
      const end = request.length === undefined ? size : Math.min(size, request.offset + request.length)
      await messages.write({ ok: true, size, offset: request.offset })
      streaming = true
      const deadline = Date.now() + transferDeadlineMs(end - request.offset, this.#c.limits)
      this.#c.onServed?.(end - request.offset)
      if (request.offset < end) {
        for await (const chunk of this.#c.blobs.createReadStream(request.sha256, request.offset, end - 1)) {
          const bytes = chunk as Buffer
          for (let i = 0; i < bytes.length; i += BLOB_CHUNK_BYTES) {
            const left = deadline - Date.now()
            if (left <= 0) throw new ProtocolError('ERR_TIMEOUT', 'the reader took the blob too slowly')
            await messages.writeFrame(bytes.subarray(i, i + BLOB_CHUNK_BYTES), Math.min(left, this.#c.limits.frameIdleTimeoutMs))
          }
        }
      }
      await messages.close()
    } catch (err) {
      const reply = refusalFor(err)
      if (reply.code === 'ERR_INTERNAL' || streaming) log.error('blob request failed', { peerId, err })
      // Once bytes are flowing a JSON reply would read as data: cut the stream instead (the
      // agent resumes from what it has and checks the hash at the end).
      if (streaming) { stream.abort(err as Error); return }
      try {
        await messages.write(reply)
        await messages.close()
      } catch {
        stream.abort(err as Error)
      }
    }
  }
}
