import { test } from 'vitest'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  decodeSafetensors, encodeSafetensors, float32ToTensor, SafetensorsError, safetensorsHeader, safetensorsParts, tensorToFloat32, tensorToInt32
} from './safetensors.ts'
import type { Dtype, TensorEntry } from './safetensors.ts'

const goldenDir = fileURLToPath(new URL('../../trainer/test-data/golden/', import.meta.url))

function bytesOf (n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 17) & 0xff
  return out
}

/** A file built by hand, so tests can lie in the header. */
function rawFile (header: unknown, data: Uint8Array, headerLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const out = new Uint8Array(8 + json.length + data.length)
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out
}

function assertCode (fn: () => unknown, code: string, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (pattern !== undefined) assert.match(err.message, pattern)
    return true
  })
}

test('every dtype round-trips with metadata, and the header is padded to 8 bytes', () => {
  const sizes: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U16: 2, U8: 1, I8: 1 }
  const tensors = new Map<string, TensorEntry>()
  let seed = 0
  for (const [dtype, size] of Object.entries(sizes) as Array<[Dtype, number]>) {
    tensors.set(`t.${dtype}`, { dtype, shape: [3, 5], data: bytesOf(15 * size, seed++) })
  }
  tensors.set('scalar', { dtype: 'F32', shape: [], data: bytesOf(4, 99) })
  tensors.set('empty', { dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) })
  const file = encodeSafetensors(tensors, { format: 'pt', note: 'ünïcode' })
  const headerLength = Number(new DataView(file.buffer).getBigUint64(0, true))
  assert.equal(headerLength % 8, 0)
  const back = decodeSafetensors(file)
  assert.deepEqual(back.metadata, { format: 'pt', note: 'ünïcode' })
  assert.deepEqual([...back.tensors.keys()], [...tensors.keys()])
  for (const [name, t] of tensors) {
    const b = back.tensors.get(name)
    assert.ok(b !== undefined)
    assert.equal(b.dtype, t.dtype)
    assert.deepEqual(b.shape, t.shape)
    assert.deepEqual(b.data, t.data)
  }
})

test('float tensors convert through F32, F16 and BF16', () => {
  const values = new Float32Array([0, 1, -2.5, 1 / 3, 1000.25, -1e-3])
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const entry = float32ToTensor(values, [2, 3], dtype)
    const file = decodeSafetensors(encodeSafetensors(new Map([['w', entry]])))
    const back = tensorToFloat32(file.tensors.get('w')!)
    const tol = dtype === 'F32' ? 0 : dtype === 'F16' ? 2 ** -11 : 2 ** -8
    for (let i = 0; i < values.length; i++) assert.ok(Math.abs(back[i] - values[i]) <= Math.abs(values[i]) * tol, `${dtype}[${i}]`)
  }
  assertCode(() => float32ToTensor(values, [4, 2]), 'ERR_SIZE_MISMATCH')
  assertCode(() => tensorToFloat32({ dtype: 'I32', shape: [1], data: new Uint8Array(4) }), 'ERR_UNSUPPORTED_DTYPE')
})

test('unaligned tensor data is copied, not misread', () => {
  const entry = float32ToTensor(new Float32Array([1.5, -2]), [2])
  const shifted = new Uint8Array(9)
  shifted.set(entry.data, 1)
  assert.deepEqual([...tensorToFloat32({ ...entry, data: shifted.subarray(1) })], [1.5, -2])
})

test('int tensors read as int32, refusing I64 values out of range', () => {
  const i64 = new BigInt64Array([0n, -1n, 2147483647n, -2147483648n])
  const entry: TensorEntry = { dtype: 'I64', shape: [4], data: new Uint8Array(i64.buffer) }
  assert.deepEqual([...tensorToInt32(entry)], [0, -1, 2147483647, -2147483648])
  assertCode(() => tensorToInt32({ ...entry, data: new Uint8Array(new BigInt64Array([2147483648n]).buffer), shape: [1] }), 'ERR_OUT_OF_RANGE')
  assertCode(() => tensorToInt32({ ...entry, data: new Uint8Array(new BigInt64Array([-2147483649n]).buffer), shape: [1] }), 'ERR_OUT_OF_RANGE')
  const i32: TensorEntry = { dtype: 'I32', shape: [2], data: new Uint8Array(new Int32Array([7, -9]).buffer) }
  assert.deepEqual([...tensorToInt32(i32)], [7, -9])
  assertCode(() => tensorToInt32({ dtype: 'F32', shape: [1], data: new Uint8Array(4) }), 'ERR_UNSUPPORTED_DTYPE')
})

test('the golden files decode', () => {
  const names = readdirSync(goldenDir).filter((f) => f.endsWith('.safetensors'))
  assert.ok(names.length >= 4)
  for (const name of names) {
    const file = decodeSafetensors(readFileSync(goldenDir + name))
    assert.equal(file.metadata.format, 'barnraise-golden-v1')
    for (const t of file.tensors.values()) {
      if (t.dtype === 'F32') assert.equal(tensorToFloat32(t).length, t.shape.reduce((a, b) => a * b, 1))
      else tensorToInt32(t)
    }
  }
  const adam = decodeSafetensors(readFileSync(goldenDir + 'adamw.safetensors'))
  assert.deepEqual(adam.tensors.get('param')?.shape, [7, 13])
  const gqa = decodeSafetensors(readFileSync(goldenDir + 'llama-tiny-gqa.safetensors'))
  const ids = tensorToInt32(gqa.tensors.get('input_ids')!)
  assert.equal(ids.length, 34)
  assert.ok(ids.every((v) => v >= 0 && v < 256))
})

test('truncated files are refused at every length', () => {
  const file = encodeSafetensors(new Map([['a', float32ToTensor(new Float32Array(4), [4])]]), { k: 'v' })
  for (let n = 0; n < file.length; n++) {
    assert.throws(() => decodeSafetensors(file.subarray(0, n)), (err: unknown) => err instanceof SafetensorsError, `length ${n}`)
  }
  assertCode(() => decodeSafetensors(file.subarray(0, 5)), 'ERR_TRUNCATED')
  assertCode(() => decodeSafetensors(file.subarray(0, 20)), 'ERR_TRUNCATED')
  assertCode(() => decodeSafetensors(file.subarray(0, file.length - 1)), 'ERR_BAD_OFFSETS')
})

test('a huge header length is refused before any allocation', () => {
  assertCode(() => decodeSafetensors(rawFile({}, new Uint8Array(0), 0xffffffffffffffffn)), 'ERR_HEADER_TOO_LARGE')
  assertCode(() => decodeSafetensors(rawFile({}, new Uint8Array(0), 200_000_000n)), 'ERR_HEADER_TOO_LARGE')
})

test('lying headers are refused with the tensor named', () => {
  const data = new Uint8Array(16)
  const f32 = (offsets: unknown, shape: unknown = [2]): unknown => ({ dtype: 'F32', shape, data_offsets: offsets })
  assertCode(() => decodeSafetensors(rawFile({ a: f32([8, 24]) }, data)), 'ERR_BAD_OFFSETS', /"a"/)
  assertCode(() => decodeSafetensors(rawFile({ a: f32([8, 4]) }, data)), 'ERR_BAD_OFFSETS', /"a"/)
  assertCode(() => decodeSafetensors(rawFile({ a: f32([0, 12]) }, data)), 'ERR_SIZE_MISMATCH', /"a".*needs 8 bytes/)
  assertCode(() => decodeSafetensors(rawFile({ a: f32([0, 8]), b: f32([4, 12]) }, data)), 'ERR_BAD_OFFSETS', /"b".*overlaps/)
  assertCode(() => decodeSafetensors(rawFile({ a: f32([0, 8]) }, data)), 'ERR_BAD_OFFSETS', /data section/)
  assertCode(() => decodeSafetensors(rawFile({ a: f32([8, 16]) }, data.subarray(0, 16))), 'ERR_BAD_OFFSETS', /gap/)
  assertCode(() => decodeSafetensors(rawFile({ a: f32([0, -8]) }, data)), 'ERR_BAD_OFFSETS')
  assertCode(() => decodeSafetensors(rawFile({ a: f32([0, 8.5]) }, data)), 'ERR_BAD_OFFSETS')
  assertCode(() => decodeSafetensors(rawFile({ a: f32('0-8') }, data)), 'ERR_BAD_OFFSETS')
  assertCode(() => decodeSafetensors(rawFile({ a: f32([0, 16], [-2, -2]) }, data)), 'ERR_BAD_SHAPE')
  assertCode(() => decodeSafetensors(rawFile({ a: f32([0, 16], [2 ** 40, 2 ** 40]) }, data)), 'ERR_BAD_SHAPE')
  assertCode(() => decodeSafetensors(rawFile({ a: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, data)), 'ERR_UNKNOWN_DTYPE', /F64/)
  assertCode(() => decodeSafetensors(rawFile({ a: 3 }, data)), 'ERR_BAD_HEADER')
  assertCode(() => decodeSafetensors(rawFile([1, 2], data)), 'ERR_BAD_HEADER')
  assertCode(() => decodeSafetensors(rawFile({ __metadata__: { n: 1 } }, new Uint8Array(0))), 'ERR_BAD_HEADER')
  // A hostile header's names, dtypes and shapes are quoted cut to 200 characters, not whole.
  const long = 'x'.repeat(1_000_000)
  for (const file of [rawFile({ [long]: f32([8, 24]) }, data), rawFile({ a: { dtype: long, shape: [2], data_offsets: [0, 8] } }, data), rawFile({ a: f32([0, 8], Array(100_000).fill(0.5)) }, data)]) {
    try {
      decodeSafetensors(file)
      assert.fail('refused')
    } catch (err) {
      assert.ok(err instanceof SafetensorsError && err.message.length < 500 && /… \(\d+ characters\)/.test(err.message), String(err).slice(0, 300))
    }
  }
  const notJson = rawFile({}, new Uint8Array(0))
  notJson[8] = 0xff
  assertCode(() => decodeSafetensors(notJson), 'ERR_BAD_HEADER')
})

test('encode refuses entries whose bytes do not match their shape', () => {
  assertCode(() => encodeSafetensors(new Map([['a', { dtype: 'F32', shape: [3], data: new Uint8Array(8) }]])), 'ERR_SIZE_MISMATCH')
  assertCode(() => encodeSafetensors(new Map([['__metadata__', { dtype: 'U8', shape: [0], data: new Uint8Array(0) }]])), 'ERR_BAD_NAME')
  assertCode(() => encodeSafetensors(new Map([['a', { dtype: 'X' as Dtype, shape: [0], data: new Uint8Array(0) }]])), 'ERR_UNKNOWN_DTYPE')
})

test('a caller-given maxHeaderBytes refuses a larger header before parsing it', () => {
  const tensors = new Map<string, TensorEntry>([['a', float32ToTensor(new Float32Array([1, 2]), [2])]])
  const file = encodeSafetensors(tensors, { format: 'pt' })
  const headerLength = Number(new DataView(file.buffer).getBigUint64(0, true))
  assert.equal(decodeSafetensors(file, { maxHeaderBytes: headerLength }).tensors.size, 1)
  assertCode(() => decodeSafetensors(file, { maxHeaderBytes: headerLength - 1 }), 'ERR_HEADER_TOO_LARGE', new RegExp(`header length ${headerLength} exceeds the ${headerLength - 1} bytes`))
  // Refused on its length alone: this header is not even JSON, and would be ERR_BAD_HEADER if parsed.
  const junk = rawFile({}, new Uint8Array(0), 4096n)
  const padded = new Uint8Array(8 + 4096)
  padded.set(junk.subarray(0, 8))
  padded.fill(0x7b, 8)
  assertCode(() => decodeSafetensors(padded, { maxHeaderBytes: 1024 }), 'ERR_HEADER_TOO_LARGE')
  assertCode(() => decodeSafetensors(padded), 'ERR_BAD_HEADER')
})

test('a tensor entry with fields beyond dtype, shape and data_offsets is refused', () => {
  const data = new Uint8Array(8)
  const entry = { dtype: 'F32', shape: [2], data_offsets: [0, 8] }
  assert.equal(decodeSafetensors(rawFile({ a: entry }, data)).tensors.size, 1)
  assertCode(() => decodeSafetensors(rawFile({ a: { ...entry, junk: Array.from({ length: 1000 }, () => ({})) } }, data)), 'ERR_BAD_HEADER', /"a": unknown header field "junk"/)
  assertCode(() => decodeSafetensors(rawFile({ a: { ...entry, quantization: 'q4' } }, data)), 'ERR_BAD_HEADER', /only dtype, shape and data_offsets/)
})

test('safetensorsParts end to end are encodeSafetensors\' bytes, the tensors\' parts their own memory', () => {
  const values = Float32Array.from({ length: 49 }, (_, i) => i / 7 - 3)
  const bytes = new Uint8Array(values.buffer)
  const tensors = new Map<string, TensorEntry>([
    ['a', { dtype: 'F32', shape: [37], data: bytes.subarray(0, 37 * 4) }],
    ['b.weight', { dtype: 'F32', shape: [3, 4], data: bytes.subarray(37 * 4) }],
    ['empty', float32ToTensor(new Float32Array(0), [0])]
  ])
  for (const metadata of [undefined, { format: 'pt' }]) {
    const parts = safetensorsParts(tensors, metadata)
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
    let at = 0
    for (const p of parts) { joined.set(p, at); at += p.byteLength }
    assert.deepEqual(joined, encodeSafetensors(tensors, metadata))
    assert.equal(parts[1]!.buffer, values.buffer, 'a view, not a copy')
  }
  assert.throws(() => safetensorsParts(new Map([['a', { dtype: 'F32', shape: [3], data: new Uint8Array(8) }]])), /needs 12 bytes, got 8/)
})

test('safetensorsHeader is the header encodeSafetensors writes, from dtypes and shapes alone', () => {
  const tensors = new Map<string, TensorEntry>([
    ['values', float32ToTensor(Float32Array.from({ length: 10 }, (_, i) => i), [10])],
    ['ids', { dtype: 'I32', shape: [2, 3], data: new Uint8Array(24) }]
  ])
  const file = encodeSafetensors(tensors, { format: 'pt' })
  const { header, dataBytes } = safetensorsHeader(new Map([['values', { dtype: 'F32', shape: [10] }], ['ids', { dtype: 'I32', shape: [2, 3] }]]), { format: 'pt' })
  assert.deepEqual(header, file.subarray(0, header.byteLength))
  assert.equal(header.byteLength + dataBytes, file.byteLength)
  assert.equal(header.byteLength % 8, 0)
  assert.throws(() => safetensorsHeader(new Map([['', { dtype: 'F32', shape: [1] }]])), /reserved or empty/)
})
