import { describe, expect, it } from 'vitest'
import { CODEC_NAMES, createFoldTarget, decodePseudoGradient, encodePseudoGradient, foldPseudoGradient, scanPseudoGradient } from './index.ts'
import { PseudoGradientError } from './codec.ts'

function values (n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  let s = seed
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) & 0x7fffffff; out[i] = ((s / 0x7fffffff) - 0.5) * (i % 700 === 0 ? 40 : 0.02) }
  out.fill(0, 300, 600) // a zero block
  return out
}

const codeOf = (fn: () => unknown): string => {
  try { fn() } catch (err) { return (err as PseudoGradientError).code }
  return 'none'
}

describe('scanning and folding a payload without decoding it whole', () => {
  for (const codec of CODEC_NAMES) {
    it(`${codec}: the same norm and the same sum, to the bit, as decode-then-fold`, () => {
      const n = 200_003
      const payload = encodePseudoGradient(codec, values(n, 7))
      const decoded = decodePseudoGradient(codec, payload, n)
      let s = 0
      for (let i = 0; i < n; i++) s += decoded[i]! * decoded[i]!
      // int8 sums squares as Σ scale²·Σq² per block (integers, exact), which differs from the
      // decoded values' Σx² only by their float32 rounding; every other codec matches to the bit.
      const norm = scanPseudoGradient(codec, payload, n).norm
      if (codec === 'int8') expect(Math.abs(norm - Math.sqrt(s))).toBeLessThan(Math.sqrt(s) * 1e-6)
      else expect(norm).toBe(Math.sqrt(s))
      const viaDecode = new Float32Array(n).fill(0.5)
      const streamed = new Float32Array(n).fill(0.5)
      for (let i = 0; i < n; i++) viaDecode[i]! += Math.fround(1234 * decoded[i]!)
      foldPseudoGradient(codec, payload, n, 1234, streamed)
      expect(Buffer.from(streamed.buffer).equals(Buffer.from(viaDecode.buffer))).toBe(true)
      // An unaligned payload (a Buffer slice at an odd offset) reads the same.
      const shifted = new Uint8Array(payload.length + 1).subarray(1)
      shifted.set(payload)
      expect(scanPseudoGradient(codec, shifted, n).norm).toBe(norm)
      // Into a fold target (WebAssembly memory: int8's SIMD kernel), the same floats again.
      const target = createFoldTarget(n)
      target.fill(0.5)
      foldPseudoGradient(codec, payload, n, 1234, target)
      expect(Buffer.from(target.buffer, target.byteOffset, target.byteLength).equals(Buffer.from(viaDecode.buffer))).toBe(true)
    })

    it(`${codec}: refuses what decoding refuses, with the same code`, () => {
      const n = 1000
      const payload = encodePseudoGradient(codec, values(n, 3))
      expect(codeOf(() => scanPseudoGradient(codec, payload.subarray(1), n))).toBe('ERR_BAD_LENGTH')
      expect(codeOf(() => foldPseudoGradient(codec, payload, n, 1, new Float32Array(n - 1)))).toBe('ERR_BAD_LENGTH')
      const broken = payload.slice()
      if (codec === 'int8') {
        new DataView(broken.buffer).setFloat32(0, Number.NaN, true)
        expect(codeOf(() => scanPseudoGradient(codec, broken, n))).toBe(codeOf(() => decodePseudoGradient(codec, broken, n)))
        const minus = payload.slice()
        minus[10] = 0x80
        expect(codeOf(() => scanPseudoGradient(codec, minus, n))).toBe('ERR_BAD_VALUE')
        const huge = payload.slice()
        new DataView(huge.buffer).setFloat32(0, 3e38, true)
        expect(codeOf(() => scanPseudoGradient(codec, huge, n))).toBe(codeOf(() => decodePseudoGradient(codec, huge, n)))
        // Two defects: decoding refuses a -128 or a bad scale anywhere in its 64 Ki-value pass
        // before it looks at overflows, so an overflow in block 0 with either later in the pass
        // is that code; one in the next pass leaves the overflow first. 256 values a block, 260 bytes.
        const big = 70_000
        const base = encodePseudoGradient(codec, values(big, 5))
        const twoDefects: Array<[string, (b: Uint8Array) => void]> = [
          ['ERR_BAD_VALUE', (b) => { b[4] = 127; b[5] = 0x80 }], // same block: an overflowing 127, then -128
          ['ERR_BAD_VALUE', (b) => { b[4] = 127; b[3 * 260 + 4 + 9] = 0x80 }], // -128 in block 3
          ['ERR_BAD_SCALE', (b) => { b[4] = 127; new DataView(b.buffer).setFloat32(7 * 260, -1, true) }], // bad scale in block 7
          ['ERR_NON_FINITE', (b) => { b[4] = 127; b[256 * 260 + 4] = 0x80 }] // -128 in block 256: the next pass
        ]
        for (const [code, corrupt] of twoDefects) {
          const bad = base.slice()
          new DataView(bad.buffer).setFloat32(0, 3e38, true)
          corrupt(bad)
          expect(codeOf(() => decodePseudoGradient(codec, bad, big))).toBe(code)
          expect(codeOf(() => scanPseudoGradient(codec, bad, big))).toBe(code)
        }
      } else if (codec === 'fp16') {
        broken[2 * 17] = 0x00; broken[2 * 17 + 1] = 0x7e // NaN
        expect(codeOf(() => scanPseudoGradient(codec, broken, n))).toBe('ERR_NON_FINITE')
      } else if (codec === 'topk') {
        // 1,000 values: an 8-byte header, then one chunk: scale, 16 indices in 24 bytes, 16 values in 8.
        const cases: Array<[string, (b: Uint8Array) => void]> = [
          ['ERR_BAD_SCALE', (b) => { new DataView(b.buffer).setFloat32(8, Number.NaN, true) }],
          ['ERR_BAD_VALUE', (b) => { b[12] = b[15]!; b[13] = (b[13]! & 0xf0) | (b[16]! & 0x0f) }], // index 0 = index 2
          ['ERR_BAD_VALUE', (b) => { b[12 + 24] = 0x08 }], // value -8
          ['ERR_BAD_LENGTH', (b) => { new DataView(b.buffer).setUint32(0, 999, true) }]
        ]
        for (const [code, corrupt] of cases) {
          const bad = payload.slice()
          corrupt(bad)
          expect(codeOf(() => decodePseudoGradient(codec, bad, n))).toBe(code)
          expect(codeOf(() => scanPseudoGradient(codec, bad, n))).toBe(code)
        }
        const huge = payload.slice()
        new DataView(huge.buffer).setFloat32(8, 3e38, true)
        expect(codeOf(() => scanPseudoGradient(codec, huge, n))).toBe(codeOf(() => decodePseudoGradient(codec, huge, n)))
      } else {
        new DataView(broken.buffer).setFloat32(4 * 17, Number.POSITIVE_INFINITY, true)
        expect(codeOf(() => scanPseudoGradient(codec, broken, n))).toBe('ERR_NON_FINITE')
      }
    })
  }
})
