import { test } from 'vitest'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { DTYPE_BYTES, SafetensorsError, decodeSafetensors, encodeSafetensors } from './safetensors.ts'
import type { Dtype, TensorEntry } from './safetensors.ts'

const DTYPES = Object.keys(DTYPE_BYTES) as Dtype[]
const encoder = new TextEncoder()

/** A file with `header` as its JSON header and `data` after it. */
function file (header: string, data: Uint8Array, claimedLength?: bigint): Uint8Array {
  const h = encoder.encode(header)
  const out = new Uint8Array(8 + h.length + data.length)
  new DataView(out.buffer).setBigUint64(0, claimedLength ?? BigInt(h.length), true)
  out.set(h, 8)
  out.set(data, 8 + h.length)
  return out
}

/** Decoding either fails with a SafetensorsError or yields tensors that lie inside the input. */
function decodesSafely (bytes: Uint8Array): void {
  try {
    const decoded = decodeSafetensors(bytes)
    for (const [name, t] of decoded.tensors) {
      assert.equal(t.data.buffer, bytes.buffer, `${name} is a view of the input`)
      assert.ok(t.data.byteOffset >= bytes.byteOffset && t.data.byteOffset + t.data.byteLength <= bytes.byteOffset + bytes.byteLength, `${name} lies inside the input`)
      assert.equal(t.data.byteLength, t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype])
    }
  } catch (err) {
    if (!(err instanceof SafetensorsError)) throw err
  }
}

const hostileEntry = fc.record({
  dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.string({ maxLength: 6 }), fc.integer()),
  shape: fc.oneof(fc.array(fc.oneof(fc.nat({ max: 64 }), fc.integer({ min: -3, max: 2 ** 40 }), fc.double(), fc.string({ maxLength: 2 })), { maxLength: 4 }), fc.string({ maxLength: 3 })),
  data_offsets: fc.oneof(fc.tuple(fc.nat({ max: 600 }), fc.nat({ max: 600 })), fc.array(fc.oneof(fc.integer({ min: -10, max: 2 ** 53 }), fc.double()), { maxLength: 3 }))
}, { requiredKeys: [] })

test('safetensors: arbitrary bytes decode into in-bounds tensors or a SafetensorsError', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => { decodesSafely(bytes) }), { numRuns: 500 })
})

test('safetensors: hostile headers (dtypes, shapes, offsets, metadata, lengths) never escape the data section', () => {
  const header = fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constant('__metadata__')), fc.oneof(hostileEntry, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 5 })
  const claimed = fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { nil: undefined })
  fc.assert(fc.property(header, fc.uint8Array({ maxLength: 700 }), claimed, fc.nat({ max: 7 }), (h, data, length, offset) => {
    const bytes = file(JSON.stringify(h), data, length)
    // At an unaligned offset inside a larger buffer, as a network read hands it over.
    const shifted = new Uint8Array(bytes.length + offset)
    shifted.set(bytes, offset)
    decodesSafely(shifted.subarray(offset))
  }), { numRuns: 500 })
})

test('safetensors: encode then decode round-trips names, dtypes, shapes, bytes and metadata', () => {
  const tensor = fc.constantFrom(...DTYPES).chain((dtype) => fc.array(fc.nat({ max: 5 }), { maxLength: 3 }).chain((shape) => {
    const n = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype]
    return fc.uint8Array({ minLength: n, maxLength: n }).map((data): TensorEntry => ({ dtype, shape, data }))
  }))
  const tensors = fc.uniqueArray(fc.tuple(fc.oneof(fc.string({ minLength: 1, maxLength: 10 }).filter((n) => n !== '__metadata__'), fc.constantFrom('__proto__', 'constructor', 'toString')), tensor), { selector: ([n]) => n, maxLength: 5 })
  fc.assert(fc.property(tensors, fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constant('__proto__')), fc.string({ maxLength: 8 }), { maxKeys: 3 }), (list, metadata) => {
    const decoded = decodeSafetensors(encodeSafetensors(new Map(list), metadata))
    assert.deepEqual(Object.entries(decoded.metadata), Object.entries(metadata))
    assert.deepEqual([...decoded.tensors.keys()].sort(), list.map(([n]) => n).sort())
    for (const [name, t] of list) {
      const got = decoded.tensors.get(name)!
      assert.deepEqual([got.dtype, got.shape, Buffer.from(got.data)], [t.dtype, t.shape, Buffer.from(t.data)])
    }
  }), { numRuns: 200 })
})
