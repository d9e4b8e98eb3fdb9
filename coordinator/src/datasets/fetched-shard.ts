import { setImmediate as nextTurn } from 'node:timers/promises'
import { checkShardTokens, readShardHeader } from '@barnraise/trainer'
import type { ShardHeader } from '@barnraise/trainer'
import { sha256HexInSlices } from '../blobs/blob-store.ts'
import type { ComputedSha256 } from '../blobs/blob-store.ts'

/** Tokens checked between turns of the event loop (a few ms of work). */
const TOKEN_SLICE = 4 * 1024 * 1024

/**
 * Checks a shard fetched from a URL without decoding it: its sha256 against the one named for
 * it, its header, and every token against its vocabulary, a slice at a time so a shard of
 * hundreds of MiB neither stalls the event loop nor is copied into a token array (decodeShard
 * made a 1 GiB Int32Array of a 512 MiB two-byte shard). Throws a message a user can act on.
 * Returns the header and the sha256 computed, for storing the bytes without hashing them again.
 */
export async function checkFetchedShard (bytes: Uint8Array, sha256: string, url: string): Promise<{ header: ShardHeader, sha256: ComputedSha256 }> {
  const computed = await sha256HexInSlices(bytes)
  if (computed !== sha256) throw new Error(`the validation shard at ${url} does not have the sha256 the manifest gives`)
  try {
    const header = readShardHeader(bytes)
    for (let from = 0; from < header.tokens; from += TOKEN_SLICE) {
      checkShardTokens(bytes, header, from, Math.min(header.tokens, from + TOKEN_SLICE))
      await nextTurn()
    }
    return { header, sha256: computed }
  } catch (err) {
    throw new Error(`the validation shard is not a token shard: ${(err as Error).message}`)
  }
}
