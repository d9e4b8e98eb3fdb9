// A small seeded generator for weight initialisation. Math.random cannot be seeded, and
// reproducible initial weights let every node and test start from the same checkpoint.

/** Uniform floats in [0, 1) from mulberry32, seeded by a splitmix32-mixed 32-bit seed. */
export function uniformGenerator (seed: number): () => number {
  let s = mixSeed(seed)
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), s | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

/** Standard normal samples (Box-Muller on the uniform generator), reproducible for a seed. */
export function normalGenerator (seed: number): () => number {
  const uniform = uniformGenerator(seed)
  let spare: number | undefined
  return () => {
    if (spare !== undefined) {
      const z = spare
      spare = undefined
      return z
    }
    // 1 - u keeps the logarithm's argument in (0, 1].
    const r = Math.sqrt(-2 * Math.log(1 - uniform()))
    const theta = 2 * Math.PI * uniform()
    spare = r * Math.sin(theta)
    return r * Math.cos(theta)
  }
}

/** Folds any safe integer seed (including ones above 2^32) into a well-mixed 32-bit state. */
function mixSeed (seed: number): number {
  const hi = Math.floor(seed / 2 ** 32) | 0
  let x = ((seed >>> 0) ^ Math.imul(hi, 0x9e3779b9)) >>> 0
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}
