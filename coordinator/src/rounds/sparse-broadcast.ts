// A sparse broadcast (run spec `broadcast: 'sparse'`): the round's mean goes out to the nodes as
// a topk payload, 0.032 bytes a parameter whatever the number of nodes, and the coordinator keeps
// what topk dropped and adds it to the next round's mean, as each node does with its own reports
// (node-agent/src/error-feedback.ts; bidirectional error feedback, as in DoubleSqueeze, Tang et
// al. 2019). The outer step applies exactly the decoded payload, so a node that applies it from
// the same base gets the same bits (round-update.ts, node-agent/src/base-rebuild.ts).
//   u_t = mean_t + e_{t-1};  send topk(u_t);  e_t = u_t − decode(topk(u_t))
// The residual is model-sized and lives in a blob beside the outer momentum (`runs.broadcast_residual`),
// written in the same transaction as the checkpoint it goes with, so a restart resumes it.
import { decodePseudoGradient, decodeSafetensors, encodePseudoGradient, encodeSafetensors, float32ToTensor, tensorToFloat32 } from '@barnraise/protocol'

/** What a sparse broadcast sends and applies, and the residual it leaves for the next round. */
export interface SparseBroadcast { encoded: Uint8Array, applied: Float32Array, residual: Float32Array }

/**
 * Encodes the round's `mean` plus the carried `residual` (null: none yet) as topk. `mean` is not
 * changed; `residual` is taken over, its buffer becoming the new residual (a model-sized buffer
 * fewer at a close: 4 GB for a 1B model).
 */
export function sparseBroadcast (mean: Float32Array, residual: Float32Array | null): SparseBroadcast {
  let carried: Float32Array
  if (residual === null) carried = new Float32Array(mean)
  else {
    if (residual.length !== mean.length) throw new Error(`the broadcast residual holds ${residual.length} values, not the model's ${mean.length}`)
    carried = residual
    for (let i = 0; i < carried.length; i++) carried[i] = mean[i]! + carried[i]!
  }
  const encoded = encodePseudoGradient('topk', carried)
  const applied = decodePseudoGradient('topk', encoded, mean.length)
  // In place: `carried` becomes what this broadcast left out.
  for (let i = 0; i < carried.length; i++) carried[i] = carried[i]! - applied[i]!
  return { encoded, applied, residual: carried }
}

/** The residual as a blob (one F32 tensor named `residual`). */
export function writeBroadcastResidual (residual: Float32Array): Uint8Array {
  return encodeSafetensors(new Map([['residual', float32ToTensor(residual, [residual.length])]]))
}

/** A stored residual, checked against the model's size and for finite values. */
export function readBroadcastResidual (bytes: Uint8Array, length: number): Float32Array {
  const entry = decodeSafetensors(bytes).tensors.get('residual')
  if (entry === undefined || entry.shape.length !== 1 || entry.shape[0] !== length) throw new Error(`the broadcast residual does not hold ${length} values`)
  const values = tensorToFloat32(entry)
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`the broadcast residual holds ${values[i]} at ${i}`)
  }
  return values
}
