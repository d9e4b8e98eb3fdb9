// Causal softmax attention with grouped-query heads. Rows of q/k/v are (batch, position)
// pairs; query head h reads key/value head floor(h / group), group = heads / kvHeads.
//
// Each (batch, head) pair is gathered into small contiguous [T, headDim] matrices so the
// score and value products run through the blocked A·Bᵀ kernel: looping over headDim-long rows
// directly is several times slower (short inner loops, one long dependency chain per dot).
import { matmulABt, transpose } from '../kernels/matmul.ts'

export interface AttentionShape {
  batch: number
  seqLen: number
  heads: number
  kvHeads: number
  headDim: number
}

/** Per-call scratch for one (batch, head) at a time. */
export interface AttentionScratch {
  qh: Float32Array
  qhT: Float32Array
  kh: Float32Array
  khT: Float32Array
  vh: Float32Array
  vhT: Float32Array
  oh: Float32Array
  ohT: Float32Array
  dkh: Float32Array
  dvh: Float32Array
  probs: Float32Array
  probsT: Float32Array
  dScores: Float32Array
  dScoresT: Float32Array
}

/** Scratch sized for a shape. */
export function attentionScratch (seqLen: number, headDim: number): AttentionScratch {
  const th = seqLen * headDim
  const tt = seqLen * seqLen
  return {
    qh: new Float32Array(th),
    qhT: new Float32Array(th),
    kh: new Float32Array(th),
    khT: new Float32Array(th),
    vh: new Float32Array(th),
    vhT: new Float32Array(th),
    oh: new Float32Array(th),
    ohT: new Float32Array(th),
    dkh: new Float32Array(th),
    dvh: new Float32Array(th),
    probs: new Float32Array(tt),
    probsT: new Float32Array(tt),
    dScores: new Float32Array(tt),
    dScoresT: new Float32Array(tt)
  }
}

/** Copies head columns [off, off+hd) of rows [row0, row0+T) of x (row width w) into dst [T, hd]. */
function gatherHead (x: Float32Array, dst: Float32Array, row0: number, T: number, w: number, off: number, hd: number): void {
  for (let t = 0; t < T; t++) {
    const from = (row0 + t) * w + off
    dst.set(x.subarray(from, from + hd), t * hd)
  }
}

/** The inverse of gatherHead: writes src [T, hd] into the head's columns of x. */
function scatterHead (src: Float32Array, x: Float32Array, row0: number, T: number, w: number, off: number, hd: number): void {
  for (let t = 0; t < T; t++) x.set(src.subarray(t * hd, (t + 1) * hd), (row0 + t) * w + off)
}

/**
 * out[b,t,h,:] = Σ_{s≤t} softmax_s(q_t·k_s / √headDim) v_s. When `probs` [batch, heads, T, T]
 * is given the attention weights are kept there for backward (zero above the diagonal).
 */
export function attentionForward (
  q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array,
  probs: Float32Array | null, sc: AttentionScratch, shape: AttentionShape
): void {
  const { batch, seqLen: T, heads, kvHeads, headDim: hd } = shape
  const group = heads / kvHeads
  const qW = heads * hd
  const kvW = kvHeads * hd
  const scale = 1 / Math.sqrt(hd)
  for (let b = 0; b < batch; b++) {
    const row0 = b * T
    for (let g = 0; g < kvHeads; g++) {
      gatherHead(k, sc.kh, row0, T, kvW, g * hd, hd)
      gatherHead(v, sc.vh, row0, T, kvW, g * hd, hd)
      transpose(sc.vh, sc.vhT, T, hd)
      for (let h = g * group; h < (g + 1) * group; h++) {
        gatherHead(q, sc.qh, row0, T, qW, h * hd, hd)
        const p = probs === null ? sc.probs : probs.subarray((b * heads + h) * T * T, (b * heads + h + 1) * T * T)
        matmulABt(sc.qh, sc.kh, p, T, T, hd, false, true)
        causalSoftmaxRows(p, T, scale)
        matmulABt(p, sc.vhT, sc.oh, T, hd, T)
        scatterHead(sc.oh, out, row0, T, qW, h * hd, hd)
      }
    }
  }
}

/** Row t of scores [T, T] becomes softmax(scale · scores[t, 0..t]), zero beyond the diagonal. */
function causalSoftmaxRows (p: Float32Array, T: number, scale: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * T
    let max = -Infinity
    for (let s = 0; s <= t; s++) if (p[o + s] > max) max = p[o + s]
    let sum = 0
    for (let s = 0; s <= t; s++) {
      const e = Math.exp((p[o + s] - max) * scale)
      p[o + s] = e
      sum += e
    }
    const inv = 1 / sum
    for (let s = 0; s <= t; s++) p[o + s] *= inv
    p.fill(0, o + t + 1, o + T)
  }
}

/**
 * Backward of attentionForward from the kept `probs`: overwrites dq, dk and dv (dk, dv summed
 * over the query heads that share each key/value head).
 */
export function attentionBackward (
  dOut: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array,
  dq: Float32Array, dk: Float32Array, dv: Float32Array, sc: AttentionScratch, shape: AttentionShape
): void {
  const { batch, seqLen: T, heads, kvHeads, headDim: hd } = shape
  const group = heads / kvHeads
  const qW = heads * hd
  const kvW = kvHeads * hd
  const scale = 1 / Math.sqrt(hd)
  const dS = sc.dScores
  for (let b = 0; b < batch; b++) {
    const row0 = b * T
    for (let g = 0; g < kvHeads; g++) {
      gatherHead(k, sc.kh, row0, T, kvW, g * hd, hd)
      transpose(sc.kh, sc.khT, T, hd)
      gatherHead(v, sc.vh, row0, T, kvW, g * hd, hd)
      sc.dkh.fill(0)
      sc.dvh.fill(0)
      for (let h = g * group; h < (g + 1) * group; h++) {
        const p = probs.subarray((b * heads + h) * T * T, (b * heads + h + 1) * T * T)
        gatherHead(dOut, sc.oh, row0, T, qW, h * hd, hd)
        // dV += Pᵀ · dO
        transpose(p, sc.probsT, T, T)
        transpose(sc.oh, sc.ohT, T, hd)
        matmulABt(sc.probsT, sc.ohT, sc.dvh, T, hd, T, true)
        // dP = dO · Vᵀ, then softmax backward dS = P ⊙ (dP − Σ P·dP), through the scale.
        matmulABt(sc.oh, sc.vh, dS, T, T, hd, false, true)
        for (let t = 0; t < T; t++) {
          const o = t * T
          let pdp = 0
          for (let s = 0; s <= t; s++) pdp += p[o + s] * dS[o + s]
          for (let s = 0; s <= t; s++) dS[o + s] = p[o + s] * (dS[o + s] - pdp) * scale
          dS.fill(0, o + t + 1, o + T)
        }
        // dQ = dS · K, dK += dSᵀ · Q
        matmulABt(dS, sc.khT, sc.oh, T, hd, T)
        scatterHead(sc.oh, dq, row0, T, qW, h * hd, hd)
        gatherHead(q, sc.qh, row0, T, qW, h * hd, hd)
        transpose(sc.qh, sc.qhT, T, hd)
        transpose(dS, sc.dScoresT, T, T)
        matmulABt(sc.dScoresT, sc.qhT, sc.dkh, T, hd, T, true)
      }
      scatterHead(sc.dkh, dk, row0, T, kvW, g * hd, hd)
      scatterHead(sc.dvh, dv, row0, T, kvW, g * hd, hd)
    }
  }
}
