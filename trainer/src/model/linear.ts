// Bias-free linear layers y = x Wᵀ with W [out, in] row-major (Hugging Face's nn.Linear layout),
// expressed through the one A·Bᵀ kernel.
import { matmulABt, transpose } from '../kernels/matmul.ts'

/** y[rows,out] = x[rows,in] · Wᵀ. */
export function linearForward (x: Float32Array, w: Float32Array, y: Float32Array, rows: number, inDim: number, outDim: number): void {
  matmulABt(x, w, y, rows, outDim, inDim)
}

/** Scratch for linearBackward: room for Wᵀ and dyᵀ of the largest layer. */
export interface LinearScratch { wT: Float32Array, dyT: Float32Array }

/**
 * Backward of y = x Wᵀ given xᵀ [in, rows] (transposed once by the caller when several layers
 * read the same input): dx = dy · W (overwritten, or added when `accumulateDx`) and dW += dyᵀ · x.
 */
export function linearBackward (
  dy: Float32Array, xT: Float32Array, w: Float32Array, dx: Float32Array, dw: Float32Array,
  rows: number, inDim: number, outDim: number, accumulateDx: boolean, scratch: LinearScratch
): void {
  transpose(w, scratch.wT, outDim, inDim)
  matmulABt(dy, scratch.wT, dx, rows, inDim, outDim, accumulateDx)
  transpose(dy, scratch.dyT, rows, outDim)
  matmulABt(scratch.dyT, xT, dw, outDim, inDim, rows, true)
}
