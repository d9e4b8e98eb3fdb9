// The outer step and its momentum, shared by the coordinator (which closes rounds) and by
// agents that rebuild the next base from a round's reports: the same code gives the same bits.
import { decodeSafetensors, encodeSafetensors, float32ToTensor, safetensorsHeader, safetensorsParts, tensorToFloat32 } from '@barnraise/protocol'
import { NesterovSGD } from './nesterov.ts'

/** The run's outer momentum from its stored blob (one F32 tensor named `values`; a header of a few hundred bytes, so a larger one is refused unparsed). */
export function readMomentum (bytes: Uint8Array, length: number): Float32Array {
  const entry = decodeSafetensors(bytes, { maxHeaderBytes: 4096 }).tensors.get('values')
  if (entry === undefined || entry.shape[0] !== length) throw new Error(`optimizer state does not hold ${length} values`)
  return tensorToFloat32(entry)
}

/** The outer momentum as a blob, readable by `readMomentum`. */
export function writeMomentum (values: Float32Array): Uint8Array {
  return encodeSafetensors(new Map([['values', float32ToTensor(values, [values.length])]]))
}

/** The bytes a momentum blob of `length` values starts with (writeMomentum's header): a stored blob is recognised by it, and a new one streamed after it. */
export function momentumHeader (length: number): Uint8Array {
  return safetensorsHeader(new Map([['values', { dtype: 'F32' as const, shape: [length] }]])).header
}

/** writeMomentum's bytes as parts end to end (safetensorsParts): the header, then a view of `values`' own memory; `values` must not change while they are used. */
export function momentumParts (values: Float32Array): Uint8Array[] {
  // Checks the host is little-endian (F32 bytes are then the values' own memory), as writeMomentum does.
  float32ToTensor(new Float32Array(0), [0])
  const view = { dtype: 'F32' as const, shape: [values.length], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) }
  return safetensorsParts(new Map([['values', view]]))
}

/** Nesterov outer step on `theta` in place with the round's mean pseudo-gradient; returns the new momentum. */
export function outerStep (theta: Float32Array, meanDelta: Float32Array, momentum: Float32Array | null, opts: { lr: number, momentum: number }): Float32Array {
  const outer = new NesterovSGD(theta.length, opts)
  if (momentum !== null) outer.importState({ step: 1, buffer: momentum })
  outer.step(theta, meanDelta)
  return outer.exportState().buffer!
}
