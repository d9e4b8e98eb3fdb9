// Optimizer state on disk: a safetensors file with the buffers as F32 tensors and the step
// count and kind in __metadata__, so a restarted agent or coordinator resumes exactly.
import { decodeSafetensors, encodeSafetensors, float32ToTensor, tensorToFloat32 } from '@barnraise/protocol'
import type { TensorEntry } from '@barnraise/protocol'
import type { AdamWState } from './adamw.ts'
import type { NesterovState } from './nesterov.ts'
import { OptimizerError } from './optimizer-error.ts'

function encodeState (kind: string, step: number, buffers: Record<string, Float32Array>): Uint8Array {
  const tensors = new Map<string, TensorEntry>()
  for (const [name, data] of Object.entries(buffers)) tensors.set(name, float32ToTensor(data, [data.length]))
  return encodeSafetensors(tensors, { format: 'barnraise-optimizer-v1', kind, step: String(step) })
}

function decodeState (bytes: Uint8Array, kind: string): { step: number, tensors: Map<string, TensorEntry> } {
  const file = decodeSafetensors(bytes)
  if (file.metadata.format !== 'barnraise-optimizer-v1' || file.metadata.kind !== kind) {
    throw new OptimizerError('ERR_BAD_STATE', `not a ${kind} optimizer state file (format ${file.metadata.format}, kind ${file.metadata.kind})`)
  }
  const step = Number(file.metadata.step)
  if (!Number.isSafeInteger(step) || step < 0) throw new OptimizerError('ERR_BAD_STATE', `optimizer state step ${file.metadata.step} is not a non-negative integer`)
  return { step, tensors: file.tensors }
}

function buffer (tensors: Map<string, TensorEntry>, name: string): Float32Array {
  const t = tensors.get(name)
  if (t === undefined || t.dtype !== 'F32') throw new OptimizerError('ERR_BAD_STATE', `optimizer state lacks F32 tensor "${name}"`)
  return tensorToFloat32(t).slice()
}

/** AdamW state as safetensors bytes. */
export function encodeAdamWState (state: AdamWState): Uint8Array {
  return encodeState('adamw', state.step, { m: state.m, v: state.v })
}

/** AdamW state from safetensors bytes written by encodeAdamWState (sizes are checked on import). */
export function decodeAdamWState (bytes: Uint8Array): AdamWState {
  const { step, tensors } = decodeState(bytes, 'adamw')
  return { step, m: buffer(tensors, 'm'), v: buffer(tensors, 'v') }
}

/** Nesterov outer-optimizer state as safetensors bytes. */
export function encodeNesterovState (state: NesterovState): Uint8Array {
  return encodeState('nesterov', state.step, state.buffer === null ? {} : { buffer: state.buffer })
}

/** Nesterov state from safetensors bytes written by encodeNesterovState. */
export function decodeNesterovState (bytes: Uint8Array): NesterovState {
  const { step, tensors } = decodeState(bytes, 'nesterov')
  return { step, buffer: tensors.has('buffer') ? buffer(tensors, 'buffer') : null }
}
