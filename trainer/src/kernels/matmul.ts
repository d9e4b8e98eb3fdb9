// Dense matrix products on row-major Float32Array, the inner loop of training.
//
// Every product the model needs is written as C = A · Bᵀ (A [m,k], B [n,k], both row-major), so
// the innermost loop is a dot product over two contiguous rows. A forward projection
// y = x Wᵀ has this shape directly (W is [out,in] as in Hugging Face checkpoints); the backward
// products get it after a cheap transpose (O(m·k) against O(m·n·k) for the product).
//
// The kernel computes a 4×4 tile of C per pass over k: 8 loads feed 16 multiply-adds, and the
// 16 accumulators stay in registers. Sums are accumulated in float64 (JS numbers), which costs
// nothing extra in V8 and keeps long reductions (k = batch·seqLen for weight gradients) accurate.

/**
 * C[m,n] = A[m,k] · B[n,k]ᵀ, or C += A · Bᵀ when `accumulate`; all row-major, C must not alias
 * A or B. With `lower`, only entries with j ≤ i are guaranteed (causal attention scores):
 * tiles wholly above the diagonal are skipped and those entries hold arbitrary values.
 */
export function matmulABt (
  a: Float32Array, b: Float32Array, c: Float32Array,
  m: number, n: number, k: number, accumulate = false, lower = false
): void {
  if (a.length < m * k || b.length < n * k || c.length < m * n) {
    throw new RangeError(`matmulABt: buffers too small for [${m},${k}]·[${n},${k}]ᵀ (have ${a.length}, ${b.length}, ${c.length})`)
  }
  const m4 = m - (m % 4)
  const n4 = n - (n % 4)
  for (let i = 0; i < m4; i += 4) {
    const a0 = i * k
    const a1 = a0 + k
    const a2 = a1 + k
    const a3 = a2 + k
    const jEnd = lower ? Math.min(n4, i + 4) : n4
    for (let j = 0; j < jEnd; j += 4) {
      const b0 = j * k
      const b1 = b0 + k
      const b2 = b1 + k
      const b3 = b2 + k
      let c00 = 0; let c01 = 0; let c02 = 0; let c03 = 0
      let c10 = 0; let c11 = 0; let c12 = 0; let c13 = 0
      let c20 = 0; let c21 = 0; let c22 = 0; let c23 = 0
      let c30 = 0; let c31 = 0; let c32 = 0; let c33 = 0
      for (let p = 0; p < k; p++) {
        const x0 = a[a0 + p]; const x1 = a[a1 + p]; const x2 = a[a2 + p]; const x3 = a[a3 + p]
        const y0 = b[b0 + p]; const y1 = b[b1 + p]; const y2 = b[b2 + p]; const y3 = b[b3 + p]
        c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3
        c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3
        c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3
        c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3
      }
      const r0 = i * n + j
      const r1 = r0 + n
      const r2 = r1 + n
      const r3 = r2 + n
      if (accumulate) {
        c[r0] += c00; c[r0 + 1] += c01; c[r0 + 2] += c02; c[r0 + 3] += c03
        c[r1] += c10; c[r1 + 1] += c11; c[r1 + 2] += c12; c[r1 + 3] += c13
        c[r2] += c20; c[r2 + 1] += c21; c[r2 + 2] += c22; c[r2 + 3] += c23
        c[r3] += c30; c[r3 + 1] += c31; c[r3 + 2] += c32; c[r3 + 3] += c33
      } else {
        c[r0] = c00; c[r0 + 1] = c01; c[r0 + 2] = c02; c[r0 + 3] = c03
        c[r1] = c10; c[r1 + 1] = c11; c[r1 + 2] = c12; c[r1 + 3] = c13
        c[r2] = c20; c[r2 + 1] = c21; c[r2 + 2] = c22; c[r2 + 3] = c23
        c[r3] = c30; c[r3 + 1] = c31; c[r3 + 2] = c32; c[r3 + 3] = c33
      }
    }
    // Columns left over when n is not a multiple of 4.
    const jTail = lower ? Math.min(n, i + 4) : n
    for (let j = n4; j < jTail; j++) {
      const b0 = j * k
      let s0 = 0; let s1 = 0; let s2 = 0; let s3 = 0
      for (let p = 0; p < k; p++) {
        const y = b[b0 + p]
        s0 += a[a0 + p] * y; s1 += a[a1 + p] * y; s2 += a[a2 + p] * y; s3 += a[a3 + p] * y
      }
      store(c, i * n + j, s0, accumulate)
      store(c, (i + 1) * n + j, s1, accumulate)
      store(c, (i + 2) * n + j, s2, accumulate)
      store(c, (i + 3) * n + j, s3, accumulate)
    }
  }
  // Rows left over when m is not a multiple of 4.
  for (let i = m4; i < m; i++) {
    const a0 = i * k
    const jEnd = lower ? Math.min(n, i + 1) : n
    for (let j = 0; j < jEnd; j++) {
      const b0 = j * k
      let s = 0
      for (let p = 0; p < k; p++) s += a[a0 + p] * b[b0 + p]
      store(c, i * n + j, s, accumulate)
    }
  }
}

function store (c: Float32Array, at: number, value: number, accumulate: boolean): void {
  if (accumulate) c[at] += value
  else c[at] = value
}

/** out[cols,rows] = inᵀ for a row-major in[rows,cols]; blocked so both sides stay in cache. */
export function transpose (input: Float32Array, out: Float32Array, rows: number, cols: number): void {
  if (input.length < rows * cols || out.length < rows * cols) {
    throw new RangeError(`transpose: buffers too small for [${rows},${cols}] (have ${input.length}, ${out.length})`)
  }
  const tile = 32
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(rows, r0 + tile)
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile)
      for (let r = r0; r < r1; r++) {
        const from = r * cols
        for (let col = c0; col < c1; col++) out[col * rows + r] = input[from + col]
      }
    }
  }
}

/** The textbook triple loop for C = A · Bᵀ: the baseline the benchmark and tests compare against. */
export function matmulABtNaive (a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p]
      c[i * n + j] = s
    }
  }
}
