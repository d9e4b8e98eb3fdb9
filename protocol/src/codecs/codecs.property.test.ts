import { test } from 'vitest'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CODEC_NAMES, PseudoGradientError, decodePseudoGradient, encodePseudoGradient, encodedByteLength, pseudoGradientErrorBound } from './index.ts'

// Hostile payloads: any bytes, any claimed length, at any offset into a larger buffer (an
// unaligned view is what a network frame usually is).
const hostileBytes = fc.tuple(fc.uint8Array({ maxLength: 3000 }), fc.nat({ max: 7 })).map(([bytes, offset]) => {
  const buffer = new Uint8Array(bytes.length + offset)
  buffer.set(bytes, offset)
  return buffer.subarray(offset)
})
const isTyped = (err: unknown): boolean => err instanceof PseudoGradientError

for (const codec of CODEC_NAMES) {
  test(`${codec}: arbitrary bytes decode to finite values of the claimed length, or a PseudoGradientError`, () => {
    fc.assert(fc.property(hostileBytes, fc.integer({ min: -5, max: 1200 }), (bytes, length) => {
      try {
        const out = decodePseudoGradient(codec, bytes, length)
        assert.equal(out.length, length)
        assert.ok(out.every(Number.isFinite))
        assert.equal(bytes.byteLength, encodedByteLength(codec, length), 'only an exactly sized payload decodes')
      } catch (err) {
        if (!isTyped(err)) throw err
      }
    }), { numRuns: 300 })
  })

  test(`${codec}: a payload sized right but with hostile bytes decodes to finite values or a typed refusal`, () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 700 }), fc.integer({ min: 0, max: 2 ** 31 }), (length, seed) => {
      const bytes = new Uint8Array(encodedByteLength(codec, length))
      for (let i = 0, x = seed; i < bytes.length; i++) { x = (x * 1103515245 + 12345) >>> 0; bytes[i] = x >>> 24 }
      try {
        const decoded = decodePseudoGradient(codec, bytes, length)
        assert.equal(decoded.length, length)
        assert.ok(decoded.every(Number.isFinite), 'a decoded payload is finite everywhere')
      } catch (err) {
        if (!isTyped(err)) throw err
      }
    }), { numRuns: 200 })
  })

  test(`${codec}: encode then decode round-trips within the documented bound`, () => {
    const finite = fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(codec === 'fp16' ? -60000 : -1e30), max: Math.fround(codec === 'fp16' ? 60000 : 1e30) })
    fc.assert(fc.property(fc.array(finite, { maxLength: 600 }), (list) => {
      const values = Float32Array.from(list)
      const decoded = decodePseudoGradient(codec, encodePseudoGradient(codec, values), values.length)
      const bound = pseudoGradientErrorBound(codec, values)
      for (let i = 0; i < values.length; i++) {
        // Float32 rounding of the product is allowed on top of the bound.
        assert.ok(Math.abs(values[i]! - decoded[i]!) <= bound[i]! * (1 + 1e-6) + Math.abs(values[i]!) * 1e-6, `${codec} element ${i}: ${values[i]} → ${decoded[i]} (bound ${bound[i]})`)
      }
    }), { numRuns: 200 })
  })

  test(`${codec}: non-finite values are refused at encode with a PseudoGradientError`, () => {
    fc.assert(fc.property(fc.array(fc.float(), { minLength: 1, maxLength: 50 }), fc.constantFrom(Number.NaN, Infinity, -Infinity), fc.nat(), (list, bad, at) => {
      const values = Float32Array.from(list)
      values[at % values.length] = bad
      assert.throws(() => encodePseudoGradient(codec, values), isTyped)
    }), { numRuns: 100 })
  })
}
