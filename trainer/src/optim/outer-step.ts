// The outer step and its momentum, shared by the coordinator (which closes rounds) and by
// agents that rebuild the next base from a round's reports: the same code gives the same bits.
import { decodeSafetensors, encodeSafetensors, encodeSafetensorsInSlices, float32ToTensor, tensorToFloat32 } from '@barnraise/protocol'
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

/** writeMomentum's bytes, copied a slice at a time with `yieldTurn` awaited between slices; `values` must not change until it resolves. */
export async function writeMomentumInSlices (values: Float32Array, opts: { sliceBytes: number, yieldTurn: () => Promise<void> }): Promise<Uint8Array> {
  // Checks the host is little-endian (F32 bytes are then the values' own memory), as writeMomentum does.
  float32ToTensor(new Float32Array(0), [0])
  const view = { dtype: 'F32' as const, shape: [values.length], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) }
  return await encodeSafetensorsInSlices(new Map([['values', view]]), undefined, opts)
}

/** Nesterov outer step on `theta` in place with the round's mean pseudo-gradient; returns the new momentum. */
export function outerStep (theta: Float32Array, meanDelta: Float32Array, momentum: Float32Array | null, opts: { lr: number, momentum: number }): Float32Array {
  const outer = new NesterovSGD(theta.length, opts)
  if (momentum !== null) outer.importState({ step: 1, buffer: momentum })
  outer.step(theta, meanDelta)
  return outer.exportState().buffer!
}
