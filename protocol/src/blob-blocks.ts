import { createHash } from 'node:crypto'
import { z } from 'zod'

/**
 * Peer exchange moves a blob in blocks of this size, each with its own sha256, so a block from an
 * untrusted peer is checked as it arrives, not after the whole blob. A 1 MiB block is one short
 * request on any link, and its digest list costs 32 bytes per MiB of blob.
 */
export const BLOB_BLOCK_BYTES = 1024 * 1024

/** The most blocks one blob may have on the swarm protocol (8 GiB at BLOB_BLOCK_BYTES). */
export const MAX_BLOB_BLOCKS = 8192

/** The largest blob anyone sends or accepts: 8 GiB (a 1B-parameter checkpoint is 4 GiB in fp32). */
export const MAX_BLOB_BYTES = MAX_BLOB_BLOCKS * BLOB_BLOCK_BYTES

/** How many blocks a blob of `size` bytes splits into (a zero-length blob still has one, empty). */
export function blockCount (size: number): number {
  return Math.max(1, Math.ceil(size / BLOB_BLOCK_BYTES))
}

/** The sha256 of each block of `bytes`, concatenated (32 bytes a block). */
export function blockDigests (bytes: Uint8Array): Uint8Array {
  const count = blockCount(bytes.byteLength)
  const out = new Uint8Array(count * 32)
  for (let i = 0; i < count; i++) {
    const block = bytes.subarray(i * BLOB_BLOCK_BYTES, Math.min(bytes.byteLength, (i + 1) * BLOB_BLOCK_BYTES))
    out.set(createHash('sha256').update(block).digest(), i * 32)
  }
  return out
}

/** Sorted block indices as [from, to) ranges. */
export function toBlockRanges (blocks: number[]): Array<{ from: number, to: number }> {
  const ranges: Array<{ from: number, to: number }> = []
  for (const b of blocks) {
    const last = ranges.at(-1)
    if (last !== undefined && last.to === b) last.to = b + 1
    else ranges.push({ from: b, to: b + 1 })
  }
  return ranges
}

/** The block indices of [from, to) ranges, below `count`. */
export function blocksInRanges (ranges: Array<{ from: number, to: number }>, count: number): number[] {
  const blocks: number[] = []
  for (const r of ranges) for (let b = r.from; b < Math.min(r.to, count); b++) blocks.push(b)
  return blocks
}

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lowercase hex')

/**
 * On `/barnraise/swarm/1.0.0`: `swarm` asks how a blob splits into blocks and who else holds it
 * (asked again mid-download, it also hands over blocks nobody took); `swarm-leave` says this
 * node no longer holds the blob, so it is not offered to others; `swarm-hold` that it holds all
 * of it; `swarm-member` whether another peer may have it.
 */
export const swarmRequestSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('swarm'), sha256: sha256Hex }).strict(),
  z.object({ type: z.literal('swarm-leave'), sha256: sha256Hex }).strict(),
  // The node holds the whole blob without having fetched it through the swarm (it rebuilt a
  // base from a round's update, or downloaded it plainly): offer it to the next askers.
  z.object({ type: z.literal('swarm-hold'), sha256: sha256Hex }).strict(),
  // Whether `peerId` may have the blob (the blob service's rule), asked by a node holding it
  // before it serves that peer blocks: a blob's sha256 is no secret (run specs list their shards).
  z.object({ type: z.literal('swarm-member'), sha256: sha256Hex, peerId: z.string().min(1).max(128) }).strict()
])

/** Block ranges, `from` inclusive, `to` exclusive. */
export const blockRangeSchema = z.object({
  from: z.number().int().nonnegative(),
  to: z.number().int().positive()
}).strict().refine((r) => r.to > r.from, 'a block range must not be empty')

/** A peer of the run the coordinator saw ask for the same blob, and where it listens. */
export const swarmPeerSchema = z.object({
  peerId: z.string().min(1).max(128),
  addrs: z.array(z.string().min(1).max(256)).max(8)
}).strict()

/**
 * The coordinator's answer. After an `ok` header comes one binary frame (or several) holding
 * `blockCount` sha256 digests, 32 bytes each. `seed` names the blocks this node should take
 * from the coordinator itself (nobody else was given them yet); every other block it asks its
 * peers for first, and takes from the coordinator only when none of them delivers it.
 */
export const swarmResponseSchema = z.union([
  z.object({
    ok: z.literal(true),
    size: z.number().int().nonnegative(),
    blockBytes: z.literal(BLOB_BLOCK_BYTES),
    blockCount: z.number().int().positive().max(MAX_BLOB_BLOCKS),
    peers: z.array(swarmPeerSchema).max(32),
    seed: z.array(blockRangeSchema).max(256)
  }).strict(),
  z.object({ ok: z.literal(true), left: z.literal(true) }).strict(),
  z.object({ ok: z.literal(true), held: z.literal(true) }).strict(),
  z.object({ ok: z.literal(true), member: z.boolean() }).strict(),
  z.object({ ok: z.literal(false), code: z.string(), message: z.string() })
])

export type SwarmRequest = z.infer<typeof swarmRequestSchema>
export type SwarmResponse = z.infer<typeof swarmResponseSchema>
export type SwarmPeer = z.infer<typeof swarmPeerSchema>
export type BlockRange = z.infer<typeof blockRangeSchema>

/**
 * On `/barnraise/blocks/1.0.0`, between agents: `have` asks which blocks of a blob the peer
 * holds; `block` asks for one of them. A holder answers only a peer the coordinator says may
 * have the blob (`swarm-member`): sha256s are public (run specs list their shards).
 */
export const peerBlockRequestSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('have'), sha256: sha256Hex }).strict(),
  z.object({ type: z.literal('block'), sha256: sha256Hex, index: z.number().int().nonnegative().max(MAX_BLOB_BLOCKS - 1) }).strict()
])

/**
 * A peer's answer: which blocks it holds (a bitfield, base64, one bit a block, first block in
 * the high bit), and for `block` the block's length, its bytes following in frames.
 */
export const peerBlockResponseSchema = z.union([
  z.object({ ok: z.literal(true), have: z.string().max(Math.ceil(MAX_BLOB_BLOCKS / 8 / 3) * 4 + 4), bytes: z.number().int().nonnegative().max(BLOB_BLOCK_BYTES).optional() }).strict(),
  z.object({ ok: z.literal(false), code: z.string().max(64), message: z.string().max(500) })
])

export type PeerBlockRequest = z.infer<typeof peerBlockRequestSchema>
export type PeerBlockResponse = z.infer<typeof peerBlockResponseSchema>

/** A held-blocks bitfield as base64 (one bit a block, first block in the high bit). */
export function encodeBitfield (present: Uint8Array): string {
  const bits = new Uint8Array(Math.ceil(present.length / 8))
  for (let i = 0; i < present.length; i++) if (present[i] === 1) bits[i >> 3]! |= 0x80 >> (i & 7)
  return Buffer.from(bits).toString('base64')
}

/** Reads a bitfield of `count` blocks; bits past the end are ignored, a short one reads as missing. */
export function decodeBitfield (base64: string, count: number): Uint8Array {
  const bits = Buffer.from(base64, 'base64')
  const present = new Uint8Array(count)
  for (let i = 0; i < count; i++) present[i] = ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0 ? 1 : 0
  return present
}
