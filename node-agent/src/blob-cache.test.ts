import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { BLOB_BLOCK_BYTES, BLOB_CHUNK_BYTES, BLOB_PROTOCOL, JsonStream, SWARM_PROTOCOL, blobRequestSchema, swarmRequestSchema } from '@barnraise/protocol'
import { BlobCache, BlobSizeError } from './blob-cache.ts'
import { createAgentHost } from './host.ts'
import { PeerExchange } from './peers/peer-exchange.ts'

const sha = (c: string): string => c.repeat(64)

test('sweeping the cache drops every blob not kept, with its partial files; a kept blob keeps a partial download to resume, not one it no longer needs; nothing else in the folder is touched', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'barnraise-sweep-'))
  const libp2p = await createAgentHost(await generateKeyPair('Ed25519'))
  try {
    const dir = join(dataDir, 'blobs')
    await mkdir(dir, { recursive: true })
    const [a, b, c, d] = [sha('a'), sha('b'), sha('c'), sha('d')]
    const files = [
      a, `${a}.part`, `${a}.put`, // kept and whole: its leftovers go
      `${b}.swarm`, `${b}.part`, `${b}.put`, // kept, not whole: its downloads stay to be resumed; a write is never resumed
      c, `${c}.part`, `${c}.swarm`, `${c}.put`, // not kept
      `${d}.put`, // not kept, a write a stop cut short
      'notes.txt', `${c}.tmp`, 'C'.repeat(64) // not the cache's names
    ]
    for (const f of files) await writeFile(join(dir, f), 'x')
    const cache = new BlobCache(dataDir, libp2p, multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${libp2p.peerId.toString()}`))
    const dropped = await cache.sweep(new Set([a, b]))
    assert.deepEqual(dropped.sort(), [c, d])
    assert.deepEqual((await readdir(dir)).sort(), [a, `${b}.part`, `${b}.swarm`, 'notes.txt', `${c}.tmp`, 'C'.repeat(64)].sort())
    // No folder yet: nothing to sweep.
    assert.deepEqual(await new BlobCache(join(dataDir, 'none'), libp2p, multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${libp2p.peerId.toString()}`)).sweep(new Set()), [])
  } finally {
    await libp2p.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
})

/**
 * A hostile coordinator: it announces every blob as `size` bytes, on the blob protocol (then
 * sends zeros) and on the swarm protocol (with its digests). Counts what it was asked.
 */
async function hostileCoordinator (size: number): Promise<{ host: Libp2p, address: Multiaddr, swarmAsks: () => number, blobAsks: () => number }> {
  const host = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
  let swarmAsks = 0
  let blobAsks = 0
  await host.handle(BLOB_PROTOCOL, async (stream) => {
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    try {
      const request = await messages.read(blobRequestSchema, 10_000)
      blobAsks++
      await messages.write({ ok: true, size, offset: request.offset })
      const zeros = new Uint8Array(BLOB_CHUNK_BYTES)
      for (let at = request.offset; at < size; at += zeros.byteLength) {
        await messages.writeFrame(zeros.subarray(0, Math.min(zeros.byteLength, size - at)), 10_000)
      }
      await messages.close()
    } catch {
      stream.abort(new Error('closed'))
    }
  })
  await host.handle(SWARM_PROTOCOL, async (stream) => {
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    try {
      await messages.read(swarmRequestSchema, 10_000)
      swarmAsks++
      const count = Math.ceil(size / BLOB_BLOCK_BYTES)
      await messages.write({ ok: true, size, blockBytes: BLOB_BLOCK_BYTES, blockCount: count, peers: [], seed: [{ from: 0, to: count }] })
      await messages.writeFrame(new Uint8Array(count * 32), 10_000)
      await messages.close()
    } catch {
      stream.abort(new Error('closed'))
    }
  })
  return { host, address: host.getMultiaddrs()[0]!, swarmAsks: () => swarmAsks, blobAsks: () => blobAsks }
}

test('a blob of known size announced at another (a small model\'s base as 64 MiB) is refused before its bytes come, on either protocol, and one cached at another size is not read (ERR_BLOB_SIZE)', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'barnraise-blob-size-'))
  const coordinator = await hostileCoordinator(64 * 1024 * 1024)
  const agent = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
  const peers = await PeerExchange.start(agent, coordinator.address)
  try {
    const refused = (err: unknown): boolean => err instanceof BlobSizeError && err.code === 'ERR_BLOB_SIZE' && /the unit's base checkpoint e{12} is 67108864 bytes, not the 1000 it must be/.test(err.message)
    const plain = new BlobCache(dataDir, agent, coordinator.address)
    await assert.rejects(plain.get(sha('e'), undefined, undefined, { bytes: 1000, what: 'the unit\'s base checkpoint' }), refused)
    const swarmed = new BlobCache(dataDir, agent, coordinator.address, { peers })
    const blobAsks = coordinator.blobAsks()
    await assert.rejects(swarmed.get(sha('e'), undefined, undefined, { bytes: 1000, what: 'the unit\'s base checkpoint' }), refused)
    assert.equal(coordinator.swarmAsks(), 1)
    assert.equal(coordinator.blobAsks(), blobAsks, 'nothing asked of the blob protocol after the swarm\'s answer')
    assert.deepEqual(await readdir(join(dataDir, 'blobs')), [], 'no partial file left or made')
    // Cached (it hashed right once) but not the size this unit needs: refused unread.
    await writeFile(join(dataDir, 'blobs', sha('f')), new Uint8Array(2000))
    await assert.rejects(plain.get(sha('f'), undefined, undefined, { bytes: 1000 }), (err: unknown) => err instanceof BlobSizeError)
    assert.equal((await plain.get(sha('f'), undefined, undefined, { bytes: 2000 })).byteLength, 2000)
    // A bound rather than a size (a momentum, whose header may vary).
    await assert.rejects(plain.get(sha('f'), undefined, undefined, { maxBytes: 1999 }), (err: unknown) => err instanceof BlobSizeError && /more than the 1999 it can be/.test(err.message))
    assert.equal((await plain.get(sha('f'), undefined, undefined, { maxBytes: 2000 })).byteLength, 2000)
    await assert.rejects(plain.get(sha('e'), undefined, undefined, { maxBytes: 1 << 20 }), (err: unknown) => err instanceof BlobSizeError && err.code === 'ERR_BLOB_SIZE')
  } finally {
    await peers.stop()
    await agent.stop()
    await coordinator.host.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
})
