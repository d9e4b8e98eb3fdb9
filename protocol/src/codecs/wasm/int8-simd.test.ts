import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { compileWat } from '../../../scripts/compile-wat.ts'
import { wasmModuleSource } from '../../../scripts/wasm-module-source.ts'
import { INT8_BLOCK, int8Codec } from '../int8.ts'
import { PseudoGradientError } from '../codec.ts'
import { createFoldTarget, foldInt8Blocks, scanInt8Blocks } from './int8-simd.ts'

/** An int8 payload of `n` values with random scales (some zero, some huge) and random bytes (no -128). */
function payload (n: number, seed: number): Uint8Array {
  const blocks = Math.ceil(n / INT8_BLOCK)
  const out = new Uint8Array(int8Codec.byteLength(n))
  const view = new DataView(out.buffer)
  let s = seed
  const next = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 }
  for (let b = 0; b < blocks; b++) {
    const at = b * (INT8_BLOCK + 4)
    const r = next()
    view.setFloat32(at, r < 0.05 ? 0 : r < 0.1 ? 1e30 : r < 0.15 ? 1e-40 : next() * 1e-3, true)
    for (let j = 0; j < Math.min(INT8_BLOCK, n - b * INT8_BLOCK); j++) out[at + 4 + j] = (Math.floor(next() * 255) - 127) & 0xff
  }
  return out
}

const code = (fn: () => unknown): string => { try { fn() } catch (err) { return `${(err as PseudoGradientError).code}: ${(err as Error).message}` } return 'none' }

describe('int8 SIMD kernels', () => {
  it('fold into a fold target gives the JS fold\'s floats to the bit, for any weight and a ragged tail', () => {
    for (const [n, weight] of [[300_000 + 77, 1234], [256 * 2048, 0.37], [255, 3], [1, -2.5]] as const) {
      const bytes = payload(n, n)
      const start = new Float32Array(n).map((_, i) => Math.sin(i) * 1e-3)
      const js = new Float32Array(start)
      int8Codec.fold!(bytes, n, weight, js)
      const target = createFoldTarget(n)
      target.set(start)
      int8Codec.fold!(bytes, n, weight, target)
      expect(Buffer.from(target.buffer, target.byteOffset, target.byteLength).equals(Buffer.from(js.buffer))).toBe(true)
    }
    // A plain array is not a target: the kernel declines and the JS loop runs.
    expect(foldInt8Blocks(payload(256, 1), 1, 1, new Float32Array(256))).toBe(false)
  })

  it('scan statistics match a plain count, and bad values are named exactly as decoding names them', () => {
    const n = 256 * 1500 + 10
    const bytes = payload(n, 5)
    const stats = scanInt8Blocks(bytes, Math.floor(n / 256))!
    const q = new Int8Array(bytes.buffer)
    for (const b of [0, 1, 1023, 1024, 1499]) {
      let squares = 0; let max = 0
      for (let j = 0; j < 256; j++) { const v = q[b * 260 + 4 + j]!; squares += v * v; max = Math.max(max, Math.abs(v)) }
      expect([...stats.subarray(3 * b, 3 * b + 3)]).toEqual([squares, max, 0])
    }
    // A -128 deep in the payload (past the first batch of blocks): the same error as decoding.
    const minus = bytes.slice()
    minus[1200 * 260 + 4 + 17] = 0x80
    expect(code(() => int8Codec.scan!(minus, n))).toBe('ERR_BAD_VALUE: int8 element 307217 is -128; encoders clamp to [-127, 127]')
    expect(code(() => int8Codec.scan!(minus, n))).toBe(code(() => { const out = new Float32Array(n); for (let s = 0; s < n; s += 65536) int8Codec.decodeChunk(minus, s, out.subarray(s, Math.min(n, s + 65536))) }))
    // A scale near float32's limit: q·scale overflows at the largest |q|.
    const huge = bytes.slice()
    new DataView(huge.buffer).setFloat32(700 * 260, 3e38, true)
    expect(code(() => int8Codec.scan!(huge, n))).toMatch(/^ERR_NON_FINITE: int8 element 1792\d\d decodes to (-)?Infinity/)
  })

  it('the committed module is what the .wat source compiles to', async () => {
    const wat = await readFile(new URL('./int8-kernels.wat', import.meta.url), 'utf8')
    const committed = await readFile(new URL('./int8-kernels.wasm.ts', import.meta.url), 'utf8')
    expect(committed).toBe(wasmModuleSource('int8-kernels.wat', await compileWat('int8-kernels.wat', wat)))
  })
})
