// Mean next-token cross-entropy over all rows, computed from logits with a stable log-sum-exp.

/**
 * Mean over rows of −log softmax(logits[r])[targets[r]]. When `gradInPlace`, overwrites the
 * logits with ∂loss/∂logits = (softmax − onehot) / rows, so training needs no second buffer.
 */
export function crossEntropy (
  logits: Float32Array, targets: Int32Array, rows: number, vocab: number, gradInPlace: boolean
): number {
  let total = 0
  const inv = 1 / rows
  for (let r = 0; r < rows; r++) {
    const o = r * vocab
    let max = -Infinity
    for (let v = 0; v < vocab; v++) if (logits[o + v] > max) max = logits[o + v]
    let sum = 0
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[o + v] - max)
    const logZ = max + Math.log(sum)
    const target = targets[r]
    total += logZ - logits[o + target]
    if (gradInPlace) {
      for (let v = 0; v < vocab; v++) logits[o + v] = Math.exp(logits[o + v] - logZ) * inv
      logits[o + target] -= inv
    }
  }
  return total / rows
}
