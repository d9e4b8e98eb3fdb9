// Deterministic training batches: batch k of a sampler is a pure function of (sources, seed, k),
// so a node that restarts mid-round regenerates exactly the batches it would have seen.
import { ShardError } from './shard.ts'
import type { ShardTokens } from './shard.ts'

/** Tokens a sampler may draw from: a whole shard, or [start, end) within it (a work unit's range). */
export interface TokenSource { tokens: ShardTokens, start?: number, end?: number }

export interface BatchOptions { batchSize: number, seqLen: number, seed: number }

/** A 32-bit mix (splitmix32 finaliser): spreads nearby seeds and steps into unrelated streams. */
function mix32 (x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}

/** mulberry32: small, fast, good enough to pick windows. */
function generator (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), s | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

interface Span { tokens: ShardTokens, start: number, windows: number }

/** Samples batch × (seqLen + 1) token windows, each inside one source, uniformly over all valid window starts. */
export class BatchSampler {
  readonly batchSize: number
  readonly seqLen: number
  readonly seed: number
  private readonly spans: Span[]
  private readonly totalWindows: number
  private nextStep = 0

  constructor (sources: TokenSource[], opts: BatchOptions) {
    const { batchSize, seqLen, seed } = opts
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new ShardError('ERR_BAD_OPTIONS', `batchSize ${batchSize} must be a positive integer`)
    if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new ShardError('ERR_BAD_OPTIONS', `seqLen ${seqLen} must be a positive integer`)
    if (!Number.isSafeInteger(seed)) throw new ShardError('ERR_BAD_OPTIONS', `seed ${seed} must be an integer`)
    this.batchSize = batchSize
    this.seqLen = seqLen
    this.seed = seed
    const window = seqLen + 1
    this.spans = []
    let total = 0
    for (const [i, s] of sources.entries()) {
      const start = s.start ?? 0
      const end = s.end ?? s.tokens.length
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > s.tokens.length || start > end) {
        throw new ShardError('ERR_BAD_OPTIONS', `source ${i}: range [${start}, ${end}) is outside its ${s.tokens.length} tokens`)
      }
      const windows = end - start - window + 1
      if (windows > 0) {
        this.spans.push({ tokens: s.tokens, start, windows })
        total += windows
      }
    }
    if (total === 0) throw new ShardError('ERR_BAD_OPTIONS', `no source holds a window of ${window} tokens (seqLen + 1)`)
    this.totalWindows = total
  }

  /** Batches handed out by next() so far. */
  get step (): number { return this.nextStep }

  /** Batch number `step`: Int32Array of batchSize rows × (seqLen + 1) tokens. */
  batchAt (step: number): Int32Array {
    if (!Number.isSafeInteger(step) || step < 0) throw new ShardError('ERR_BAD_OPTIONS', `step ${step} must be a non-negative integer`)
    const window = this.seqLen + 1
    const seedHi = Math.floor(this.seed / 2 ** 32) | 0
    const rand = generator(mix32(mix32((this.seed >>> 0) ^ mix32(seedHi + 0x9e3779b9)) + step))
    const out = new Int32Array(this.batchSize * window)
    for (let b = 0; b < this.batchSize; b++) {
      // two draws give a 53-bit uniform, so huge corpora are still sampled evenly
      const u = (Math.floor(rand() * 2 ** 21) * 2 ** 32 + rand() * 2 ** 32) / 2 ** 53
      let k = Math.floor(u * this.totalWindows)
      if (k >= this.totalWindows) k = this.totalWindows - 1
      let span = this.spans[0]
      for (const s of this.spans) {
        span = s
        if (k < s.windows) break
        k -= s.windows
      }
      const from = span.start + k
      for (let t = 0; t < window; t++) out[b * window + t] = span.tokens[from + t]
    }
    return out
  }

  /** The next batch (batchAt(step), then step + 1); resume by setting the step with seek(). */
  next (): Int32Array {
    return this.batchAt(this.nextStep++)
  }

  /** Continue from batch `step` (after a restart). */
  seek (step: number): void {
    if (!Number.isSafeInteger(step) || step < 0) throw new ShardError('ERR_BAD_OPTIONS', `step ${step} must be a non-negative integer`)
    this.nextStep = step
  }
}

/** Entropy of the token frequency distribution in nats/token: the loss of the best context-free model, which training must beat. */
export function unigramEntropy (tokens: ArrayLike<number>): number {
  const counts = new Map<number, number>()
  for (let i = 0; i < tokens.length; i++) counts.set(tokens[i], (counts.get(tokens[i]) ?? 0) + 1)
  let h = 0
  for (const c of counts.values()) {
    const p = c / tokens.length
    h -= p * Math.log(p)
  }
  return h
}
