// Error feedback for lossy sparse codecs (Karimireddy et al. 2019, "Error Feedback Fixes
// SignSGD"; SparseLoCo 2025 uses it with top-k): what the codec dropped from this node's
// pseudo-gradient is kept and added to its next one, so over rounds every coordinate is sent.
//   Δ'_t = Δ_t + β·e_{t-1};  send C(Δ'_t);  e_t = Δ'_t − decode(C(Δ'_t))
// β is the run's recipe.errorFeedbackDecay (SparseLoCo decays its residual too): 1 keeps every
// coordinate owed until sent; less lets what stayed unsent for rounds fade (0.7 suited short runs
// best in `pnpm bench comm`).
// It lives in the agent, not in an executor, because the agent encodes for every executor: a
// TypeScript and a torch node keep it the same way. One file per run in the run's state folder,
// written only once the coordinator took the report (a refused report leaves e_{t-1} as it was).
import { access, rename, rm, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { decodePseudoGradient, readWholeFile } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'

const FILE = 'error-feedback.bin'
const MAGIC = 'BRERRFB1'
const HEADER = 16

/** Codecs that drop part of a delta, so the node carries the rest into its next report. */
export function usesErrorFeedback (codec: CodecName): boolean {
  return codec === 'topk'
}

/** The residual saved for a run, or zeros (with why) when there is none or it does not fit this model. */
export async function readResidual (runDir: string, length: number): Promise<{ residual: Float32Array, note: string | null }> {
  let bytes: Buffer
  try {
    // Model-sized: past fs.readFile's 2 GiB for a 1B model.
    const whole = await readWholeFile(join(runDir, FILE))
    bytes = Buffer.from(whole.buffer, whole.byteOffset, whole.byteLength)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { residual: new Float32Array(length), note: null }
    throw err
  }
  const stored = bytes.byteLength >= HEADER ? bytes.readDoubleLE(8) : -1
  if (bytes.subarray(0, 8).toString('latin1') !== MAGIC || stored !== length || bytes.byteLength !== HEADER + 4 * length) {
    return { residual: new Float32Array(length), note: `the saved error feedback (${bytes.byteLength} bytes) does not fit this run's ${length} parameters; starting from zero` }
  }
  const residual = new Float32Array(length)
  new Uint8Array(residual.buffer).set(bytes.subarray(HEADER))
  for (let i = 0; i < length; i++) {
    if (!Number.isFinite(residual[i])) return { residual: new Float32Array(length), note: `the saved error feedback holds ${residual[i]} at ${i}; starting from zero` }
  }
  return { residual, note: null }
}

/**
 * Whether a run holds a residual: a node moved from a sparse codec to a dense one (its link got
 * faster, in a run that allows both) still owes the coordinator what the sparse reports dropped.
 */
export async function hasResidual (runDir: string): Promise<boolean> {
  try {
    await access(join(runDir, FILE))
    return true
  } catch {
    return false
  }
}

/** Forgets a run's residual: sent in full by a dense codec's report. */
export async function clearResidual (runDir: string): Promise<void> {
  await rm(join(runDir, FILE), { force: true })
}

/** Saves a run's residual (a temporary file renamed over the old one, so a crash leaves one or the other). */
export async function writeResidual (runDir: string, residual: Float32Array): Promise<void> {
  await mkdir(runDir, { recursive: true })
  const bytes = Buffer.alloc(HEADER + residual.byteLength)
  bytes.write(MAGIC, 0, 'latin1')
  bytes.writeDoubleLE(residual.length, 8)
  bytes.set(new Uint8Array(residual.buffer, residual.byteOffset, residual.byteLength), HEADER)
  const tmp = join(runDir, `${FILE}.tmp`)
  await writeFile(tmp, bytes)
  await rename(tmp, join(runDir, FILE))
}

/**
 * Δ' = Δ + decay · e_{t−1}, in place on `delta`: the residual a node carries into its report,
 * scaled by the run's recipe.errorFeedbackDecay (1: all of it, the default of runs before it).
 */
export function addResidual (delta: Float32Array, residual: Float32Array, decay: number): void {
  // 1 · e is e exactly, so a decay of 1 gives the bits runs before the setting gave.
  for (let i = 0; i < delta.length; i++) delta[i]! += decay * residual[i]!
}

/** e_t = Δ' − decode(payload): what the payload did not carry. */
export function residualAfter (corrected: Float32Array, codec: CodecName, payload: Uint8Array): Float32Array {
  const sent = decodePseudoGradient(codec, payload, corrected.length)
  const residual = new Float32Array(corrected.length)
  for (let i = 0; i < residual.length; i++) residual[i] = corrected[i]! - sent[i]!
  return residual
}
