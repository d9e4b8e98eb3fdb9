// Download the update, not the model. A node that holds the previous round's base and the
// outer momentum that went with it rebuilds this round's base itself from the previous round's
// accepted reports, with the coordinator's own code: foldPseudoGradient in ledger order with
// token weights, the token-weighted mean as RoundAccumulator.mean takes it, the trainer's
// outerStep, storedCheckpointBytes; or from the round's mean as the coordinator encoded and
// applied it (an int8 aggregate, about a quarter of the model), whichever is fewer bytes. The
// result is used only if it hashes to the unit's baseCheckpoint; otherwise the node downloads
// the checkpoint as before. With topk reports a round's update is a few percent of the model.
import { mkdir, readdir, rm, stat, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { decodePseudoGradient, foldPseudoGradient, readWholeFile, scanPseudoGradient } from '@barnraise/protocol'
import type { WorkUnit } from '@barnraise/protocol'
import { BlobSizeError } from './blob-cache.ts'
import { storedCheckpointByteLength } from './blob-sizes.ts'
import { countParams, outerStep, paramSetFromSafetensors, readMomentum, sha256Hex, storedCheckpointBytes, writeMomentum } from '@barnraise/trainer'

/** The blobs a rebuild reads and writes (the agent's BlobCache). */
export interface RebuildStore {
  has: (sha256: string) => Promise<boolean>
  /** With `bytes`, a blob announced at another size is refused before it is fetched (BlobCache.get). */
  get: (sha256: string, signal?: AbortSignal, url?: string, options?: { bytes?: number, what?: string }) => Promise<Uint8Array>
  put: (sha256: string, bytes: Uint8Array) => Promise<void>
  drop: (sha256: string) => Promise<void>
}

/** Momentum records kept per run: the newest few (a node only ever needs the last one or two). */
const KEEP_MOMENTA = 2

function momentumDir (runDir: string): string {
  return join(runDir, 'momentum')
}

/**
 * Remembers the outer momentum that goes with checkpoint `checkpoint` (null: before the first
 * outer step), so the next round's update can be applied to it.
 */
export async function recordMomentum (runDir: string, checkpoint: string, momentum: Float32Array | null): Promise<void> {
  const dir = momentumDir(runDir)
  await mkdir(dir, { recursive: true })
  const tmp = join(dir, `${checkpoint}.tmp`)
  await writeFile(tmp, momentum === null ? new Uint8Array(0) : writeMomentum(momentum))
  await rename(tmp, join(dir, checkpoint))
  const files = await readdir(dir)
  const dated = await Promise.all(files.filter((f) => /^[0-9a-f]{64}$/.test(f)).map(async (f) => ({ f, t: (await stat(join(dir, f))).mtimeMs })))
  for (const { f } of dated.sort((a, b) => b.t - a.t).slice(KEEP_MOMENTA)) await rm(join(dir, f), { force: true })
}

/** The momentum that goes with `checkpoint`: its values, null for none yet, undefined when this node does not know it. */
export async function momentumFor (runDir: string, checkpoint: string, length: number): Promise<Float32Array | null | undefined> {
  let bytes: Uint8Array
  try {
    // Model-sized: past fs.readFile's 2 GiB for a 1B model.
    bytes = await readWholeFile(join(momentumDir(runDir), checkpoint))
  } catch {
    return undefined
  }
  if (bytes.byteLength === 0) return null
  try {
    return readMomentum(bytes, length)
  } catch {
    return undefined
  }
}

export type RebuildOutcome =
  | { rebuilt: true, bytes: Uint8Array, reports: number, reportBytes: number }
  | { rebuilt: false, reason: string }

/** Rebuilds the unit's base from its `update`, or says why not (the caller then downloads it). `reports` is 0 when the update came as the round's aggregate. */
export async function rebuildBase (store: RebuildStore, runDir: string, unit: WorkUnit, signal?: AbortSignal): Promise<RebuildOutcome> {
  const u = unit.update
  if (u === undefined) return { rebuilt: false, reason: 'the unit carries no update' }
  const n = countParams(unit.modelConfig)
  if (!await store.has(u.from)) return { rebuilt: false, reason: 'this node does not hold the previous base' }
  const momentum = await momentumFor(runDir, u.from, n)
  if (momentum === undefined) return { rebuilt: false, reason: 'this node does not know the momentum of the previous base' }
  const blobs = u.aggregate !== undefined ? [u.aggregate] : u.reports ?? []
  const reportBytes = blobs.reduce((s, r) => s + r.bytes, 0)
  // A checkpoint is 4 bytes a parameter; dense reports from many nodes can outweigh it.
  if (reportBytes >= 4 * n) return { rebuilt: false, reason: `the round's reports (${reportBytes} bytes) are no smaller than the model` }
  const theta = new Float32Array(paramSetFromSafetensors(unit.modelConfig, await store.get(u.from, signal, undefined, { bytes: storedCheckpointByteLength(unit.modelConfig), what: 'the previous base' })).flat)
  let mean: Float32Array
  // The sizes above are the coordinator's word: each blob is held to its own, so a rebuild never
  // fetches more than the model it saves (listed as a few bytes, 10,000 model-sized reports had
  // all been fetched onto this disk before the base failed its hash).
  const misstated = (blob: { sha256: string, bytes: number }, payload: Uint8Array): string | undefined =>
    payload.byteLength === blob.bytes ? undefined : `blob ${blob.sha256.slice(0, 12)} is ${payload.byteLength} bytes, not the ${blob.bytes} the round's update lists`
  try {
    if (u.aggregate !== undefined) {
      const payload = await store.get(u.aggregate.sha256, signal, undefined, { bytes: u.aggregate.bytes, what: 'the round\'s aggregate' })
      const wrong = misstated(u.aggregate, payload)
      if (wrong !== undefined) return { rebuilt: false, reason: wrong }
      // The coordinator applied exactly these decoded values.
      mean = decodePseudoGradient(u.aggregate.codec, payload, n)
    } else {
      mean = new Float32Array(n)
      let tokens = 0
      // The reports' codec, where the coordinator moved this node to another one than they were sent in.
      const codec = u.codec ?? unit.codec
      for (const r of u.reports ?? []) {
        const payload = await store.get(r.sha256, signal, undefined, { bytes: r.bytes, what: 'a round\'s report' })
        const wrong = misstated(r, payload)
        if (wrong !== undefined) return { rebuilt: false, reason: wrong }
        scanPseudoGradient(codec, payload, n)
        foldPseudoGradient(codec, payload, n, r.tokens, mean)
        tokens += r.tokens
      }
      // As RoundAccumulator.mean: the sum times 1/tokens, rounded to float32 (in place: one
      // model-sized buffer fewer).
      const inv = 1 / tokens
      for (let i = 0; i < n; i++) mean[i] = mean[i]! * inv
    }
  } catch (err) {
    // Announced at another size than the update lists: refused before it was fetched.
    if (err instanceof BlobSizeError) return { rebuilt: false, reason: err.message }
    throw err
  } finally {
    // Used once, whatever happened: a round's reports never pile up in the cache.
    for (const r of blobs) await store.drop(r.sha256)
  }
  const next = outerStep(theta, mean, momentum, { lr: u.outerLr, momentum: u.outerMomentum })
  const bytes = storedCheckpointBytes(unit.modelConfig, theta)
  const sha = sha256Hex(bytes)
  if (sha !== unit.baseCheckpoint) return { rebuilt: false, reason: `the rebuilt base hashes to ${sha.slice(0, 12)}, not ${unit.baseCheckpoint.slice(0, 12)}` }
  await store.put(sha, bytes)
  await recordMomentum(runDir, sha, next)
  await store.drop(u.from)
  return { rebuilt: true, bytes, reports: u.reports?.length ?? 0, reportBytes }
}
