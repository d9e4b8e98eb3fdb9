// The Llama MLP's gated activation: act = silu(gate) · up, with silu(g) = g · σ(g).

/** act[i] = silu(gate[i]) · up[i] for the first n elements. */
export function swigluForward (gate: Float32Array, up: Float32Array, act: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]
    act[i] = g / (1 + Math.exp(-g)) * up[i]
  }
}

/** Gradients of swigluForward: dGate = dAct · up · silu'(g), dUp = dAct · silu(g); silu' = σ(1 + g(1 − σ)). */
export function swigluBackward (
  dAct: Float32Array, gate: Float32Array, up: Float32Array,
  dGate: Float32Array, dUp: Float32Array, n: number
): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]
    const sig = 1 / (1 + Math.exp(-g))
    const da = dAct[i]
    dUp[i] = da * g * sig
    dGate[i] = da * up[i] * sig * (1 + g * (1 - sig))
  }
}
