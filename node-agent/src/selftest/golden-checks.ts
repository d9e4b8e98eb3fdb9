// Known-answer files (trainer/test-data/golden/README.md) checked against this machine's
// arithmetic: the Llama forward/backward pass, AdamW and the DiLoCo outer Nesterov step.
import { tensorToFloat32 } from '@barnraise/protocol'
import type { SafetensorsFile } from '@barnraise/protocol'
import { AdamW, NesterovSGD, lossAndGrad, forward, readLlamaGolden, relativeError } from '@barnraise/trainer'
import { SelftestError } from './check-row.ts'
import type { CheckRow } from './check-row.ts'

/** The bar for the model: float32 against PyTorch's float64 (README: about 1e-4). */
export const MODEL_THRESHOLD = 1e-4
/** Parameters after an optimizer step. */
const PARAMS_THRESHOLD = 1e-4
/**
 * An AdamW update is ~1e-3 of the parameter, so float32 rounding of the stored parameters alone
 * is ~6e-5 of it; 1e-3 is the honest bar for the update itself.
 */
const ADAMW_UPDATE_THRESHOLD = 1e-3

/** The kinds `checkGoldenFile` understands. */
export const GOLDEN_KINDS = ['llama-forward-backward', 'adamw', 'nesterov-outer'] as const

/** Runs the check a decoded golden file asks for (by its `kind`) and returns one row per compared tensor. */
export function checkGoldenFile (file: SafetensorsFile): CheckRow[] {
  const kind = file.metadata.kind
  switch (kind) {
    case 'llama-forward-backward': return checkLlama(file)
    case 'adamw': return checkOptimizer(file, 'adamw')
    case 'nesterov-outer': return checkOptimizer(file, 'nesterov-outer')
    default: throw new SelftestError(`golden file kind ${JSON.stringify(kind)} is not one of ${GOLDEN_KINDS.join(', ')}`)
  }
}

function checkLlama (file: SafetensorsFile): CheckRow[] {
  const g = readLlamaGolden(file)
  const rows: CheckRow[] = []
  const row = (name: string, value: number): void => { rows.push({ name, value, threshold: MODEL_THRESHOLD, relErr: true }) }
  const out = forward(g.params, g.inputIds, g.batch, g.seqLen)
  row('logits', relativeError(out.logits, g.logits))
  const { loss, grads } = lossAndGrad(g.params, g.inputIds, g.batch, g.seqLen)
  row('loss', relativeError([loss], [g.loss]))
  for (const [name, want] of g.grads) row(`grad/${name}`, relativeError(grads.tensors.get(name)?.data ?? [], want))
  return rows
}

function floats (file: SafetensorsFile, name: string): Float32Array {
  const entry = file.tensors.get(name)
  if (entry === undefined) throw new SelftestError(`golden file has no tensor "${name}"`)
  return tensorToFloat32(entry).slice()
}

function hyperparameters (file: SafetensorsFile): Record<string, number> {
  let hp: unknown
  try {
    hp = JSON.parse(file.metadata.hyperparameters ?? '')
  } catch {
    throw new SelftestError('golden file metadata "hyperparameters" is missing or not JSON')
  }
  if (typeof hp !== 'object' || hp === null) throw new SelftestError('golden file metadata "hyperparameters" must be a JSON object')
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(hp)) if (typeof v === 'number') out[k] = v
  return out
}

function required (hp: Record<string, number>, key: string): number {
  const v = hp[key]
  if (v === undefined) throw new SelftestError(`golden file hyperparameters lack "${key}"`)
  return v
}

function checkOptimizer (file: SafetensorsFile, kind: 'adamw' | 'nesterov-outer'): CheckRow[] {
  const hp = hyperparameters(file)
  const params = floats(file, 'param')
  const inputName = kind === 'adamw' ? 'grad_step' : 'pseudo_grad_step'
  const opt = kind === 'adamw'
    ? new AdamW(params.length, { lr: required(hp, 'lr'), beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weightDecay: hp.weight_decay })
    : new NesterovSGD(params.length, { lr: required(hp, 'lr'), momentum: required(hp, 'momentum') })
  const rows: CheckRow[] = []
  for (let k = 1; file.tensors.has(`${inputName}${k}`); k++) {
    const input = floats(file, `${inputName}${k}`)
    const want = floats(file, `expected_after_step${k}`)
    if (input.length !== params.length || want.length !== params.length) {
      throw new SelftestError(`step ${k}: tensors have ${input.length} and ${want.length} values, "param" has ${params.length}`)
    }
    const before = params.slice()
    opt.step(params, input)
    rows.push({ name: `step ${k} params`, value: relativeError(params, want), threshold: PARAMS_THRESHOLD, relErr: true })
    const update = params.map((p, i) => p - before[i])
    const wantUpdate = want.map((p, i) => p - before[i])
    // Not counted in max_rel_err: its bar differs from the parameters' (see ADAMW_UPDATE_THRESHOLD).
    rows.push({ name: `step ${k} update`, value: relativeError(update, wantUpdate), threshold: kind === 'adamw' ? ADAMW_UPDATE_THRESHOLD : PARAMS_THRESHOLD, relErr: false, unit: 'update rel err' })
  }
  if (rows.length === 0) throw new SelftestError(`golden file has no "${inputName}1" tensor`)
  return rows
}
