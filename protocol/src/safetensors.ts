// safetensors read/write (https://github.com/huggingface/safetensors): u64 LE header length,
// a JSON header, then raw little-endian tensor bytes. Decoding accepts what the reference
// Rust library writes (contiguous, non-overlapping, covering the data section exactly, entries of
// dtype, shape and data_offsets only) and refuses everything else with a typed error, never an
// out-of-bounds read.
import { CodedError } from './coded-error.ts'
import {
  decodeBfloat16Array, decodeFloat16Array, encodeBfloat16Array, encodeFloat16Array
} from './half-precision.ts'

export type Dtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U16' | 'U8' | 'I8'

/** One tensor: dtype, shape and its raw little-endian bytes. */
export interface TensorEntry { dtype: Dtype, shape: number[], data: Uint8Array }

export interface SafetensorsFile { metadata: Record<string, string>, tensors: Map<string, TensorEntry> }

export type SafetensorsErrorCode =
  | 'ERR_TRUNCATED'
  | 'ERR_HEADER_TOO_LARGE'
  | 'ERR_BAD_HEADER'
  | 'ERR_UNKNOWN_DTYPE'
  | 'ERR_BAD_SHAPE'
  | 'ERR_BAD_OFFSETS'
  | 'ERR_SIZE_MISMATCH'
  | 'ERR_BAD_NAME'
  | 'ERR_UNSUPPORTED_DTYPE'
  | 'ERR_OUT_OF_RANGE'

/** A refused safetensors file or tensor, with a code a caller can switch on. */
export class SafetensorsError extends CodedError<SafetensorsErrorCode> {}

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U16: 2, U8: 1, I8: 1
}

/** The reference library caps headers at 100 MB; a larger length is a corrupt or hostile file. */
export const MAX_HEADER_BYTES = 100_000_000

const METADATA_KEY = '__metadata__'
const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/**
 * A name, dtype or shape from a file's header as an error quotes it: at most 200 characters. A
 * checkpoint comes from the coordinator, and a 20 MB tensor name made a 20 MB message.
 */
function shown (value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value)
  return text.length <= 200 ? text : `${text.slice(0, 200)}… (${text.length} characters)`
}

function isDtype (value: unknown): value is Dtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value)
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Number of elements of a shape, or an error naming the tensor when the shape is not a list of non-negative integers. */
function elementCount (name: string, shape: unknown): number {
  if (!Array.isArray(shape)) throw new SafetensorsError('ERR_BAD_SHAPE', `tensor "${shown(name)}": shape must be an array of non-negative integers`)
  let n = 1
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError('ERR_BAD_SHAPE', `tensor "${shown(name)}": shape ${shown(shape)} has a dimension that is not a non-negative integer`)
    }
    n *= d
    if (!Number.isSafeInteger(n)) throw new SafetensorsError('ERR_BAD_SHAPE', `tensor "${shown(name)}": shape ${shown(shape)} has too many elements`)
  }
  return n
}

interface HeaderEntry { name: string, dtype: Dtype, shape: number[], begin: number, end: number }

function parseHeaderEntry (name: string, raw: unknown, dataBytes: number): HeaderEntry {
  if (name.length === 0) throw new SafetensorsError('ERR_BAD_NAME', 'a tensor has an empty name')
  if (!isPlainObject(raw)) throw new SafetensorsError('ERR_BAD_HEADER', `tensor "${shown(name)}": header entry must be an object with dtype, shape and data_offsets`)
  // The format has exactly these three fields; anything else is not from a safetensors writer,
  // and a place to hide bulk that costs parse time and memory.
  for (const key of Object.keys(raw)) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') {
      throw new SafetensorsError('ERR_BAD_HEADER', `tensor "${shown(name)}": unknown header field ${JSON.stringify(key.slice(0, 40))}; an entry holds only dtype, shape and data_offsets`)
    }
  }
  const { dtype, shape, data_offsets: offsets } = raw
  if (!isDtype(dtype)) throw new SafetensorsError('ERR_UNKNOWN_DTYPE', `tensor "${shown(name)}": dtype ${shown(dtype)} is not one of ${Object.keys(DTYPE_BYTES).join(', ')}`)
  const count = elementCount(name, shape)
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) {
    throw new SafetensorsError('ERR_BAD_OFFSETS', `tensor "${shown(name)}": data_offsets must be [begin, end] non-negative integers`)
  }
  const [begin, end] = offsets as number[]
  if (begin > end || end > dataBytes) {
    throw new SafetensorsError('ERR_BAD_OFFSETS', `tensor "${shown(name)}": data_offsets [${begin}, ${end}] fall outside the ${dataBytes}-byte data section`)
  }
  const expected = count * DTYPE_BYTES[dtype]
  if (end - begin !== expected) {
    throw new SafetensorsError('ERR_SIZE_MISMATCH', `tensor "${shown(name)}": ${dtype} ${shown(shape)} needs ${expected} bytes but data_offsets span ${end - begin}`)
  }
  return { name, dtype, shape: shape as number[], begin, end }
}

function parseMetadata (raw: unknown): Record<string, string> {
  if (!isPlainObject(raw)) throw new SafetensorsError('ERR_BAD_HEADER', '__metadata__ must be an object of string values')
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new SafetensorsError('ERR_BAD_HEADER', `__metadata__.${k} must be a string, got ${typeof v}`)
    // Defined, not assigned: a key named "__proto__" would otherwise be dropped (or reach the prototype).
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
  }
  return out
}

export interface DecodeSafetensorsOptions {
  /**
   * The largest header this caller expects, below MAX_HEADER_BYTES: a caller that knows how many
   * tensors the file should hold refuses a bloated header before parsing it, since JSON.parse of
   * 100 MB blocks the thread for a minute and can exhaust the heap (an uncatchable crash).
   */
  maxHeaderBytes?: number
}

/** Parses a safetensors file; tensor data are views into `bytes` (no copy). */
export function decodeSafetensors (bytes: Uint8Array, options: DecodeSafetensorsOptions = {}): SafetensorsFile {
  if (bytes.byteLength < 8) throw new SafetensorsError('ERR_TRUNCATED', `file is ${bytes.byteLength} bytes; a safetensors file starts with an 8-byte header length`)
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true)
  if (headerLength > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError('ERR_HEADER_TOO_LARGE', `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte cap; the file is corrupt or not safetensors`)
  const cap = options.maxHeaderBytes
  if (cap !== undefined && headerLength > BigInt(Math.max(0, Math.floor(cap)))) {
    throw new SafetensorsError('ERR_HEADER_TOO_LARGE', `header length ${headerLength} exceeds the ${Math.floor(cap)} bytes a file of the expected tensors needs; the file is corrupt or padded with something other than weights`)
  }
  const n = Number(headerLength)
  if (8 + n > bytes.byteLength) throw new SafetensorsError('ERR_TRUNCATED', `header claims ${n} bytes but only ${bytes.byteLength - 8} follow the length; the file is truncated`)

  let header: unknown
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)))
  } catch (err) {
    throw new SafetensorsError('ERR_BAD_HEADER', `header is not valid UTF-8 JSON: ${(err as Error).message}`)
  }
  if (!isPlainObject(header)) throw new SafetensorsError('ERR_BAD_HEADER', 'header must be a JSON object')

  const data = bytes.subarray(8 + n)
  let metadata: Record<string, string> = {}
  const entries: HeaderEntry[] = []
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) metadata = parseMetadata(raw)
    else entries.push(parseHeaderEntry(name, raw, data.byteLength))
  }

  // Sorting by offsets gives a stable file order; then each tensor must start where the last ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end)
  let cursor = 0
  for (const e of entries) {
    if (e.begin !== cursor) {
      const what = e.begin < cursor ? 'overlaps the tensor before it' : `leaves a gap after byte ${cursor}`
      throw new SafetensorsError('ERR_BAD_OFFSETS', `tensor "${shown(e.name)}": data_offsets [${e.begin}, ${e.end}] ${what}`)
    }
    cursor = e.end
  }
  if (cursor !== data.byteLength) {
    throw new SafetensorsError('ERR_BAD_OFFSETS', `tensors cover ${cursor} bytes but the data section holds ${data.byteLength}; the file is padded or truncated`)
  }

  const tensors = new Map<string, TensorEntry>()
  for (const e of entries) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: data.subarray(e.begin, e.end) })
  return { metadata, tensors }
}

/** Writes a safetensors file: tensors in map order, header padded with spaces to a multiple of 8 bytes. */
export function encodeSafetensors (tensors: Map<string, TensorEntry>, metadata?: Record<string, string>): Uint8Array {
  const { out, dataStart } = safetensorsShell(tensors, metadata)
  let at = dataStart
  for (const t of tensors.values()) {
    out.set(t.data, at)
    at += t.data.byteLength
  }
  return out
}

/**
 * encodeSafetensors' bytes as parts end to end: the header, then each tensor's own data (views,
 * not copies). A model-sized file can be hashed and written from them without first being built
 * whole: at 1B parameters that copy was 4 GB. `tensors` must not change while the parts are used.
 */
export function safetensorsParts (tensors: Map<string, TensorEntry>, metadata?: Record<string, string>): Uint8Array[] {
  const { header } = safetensorsHeader(tensors, metadata)
  return [header, ...[...tensors.values()].map((t) => t.data)]
}

/** A checked layout for `tensors`: the whole file's buffer with its header written, and where the tensors' bytes start. */
function safetensorsShell (tensors: Map<string, TensorEntry>, metadata?: Record<string, string>): { out: Uint8Array, dataStart: number } {
  const { header, dataBytes } = safetensorsHeader(tensors, metadata)
  const out = new Uint8Array(header.byteLength + dataBytes)
  out.set(header)
  return { out, dataStart: header.byteLength }
}

/**
 * The header encodeSafetensors writes for tensors of these dtypes and shapes, in map order
 * (length, JSON, padding to 8 bytes: where the tensors' bytes start), and how many bytes of
 * tensors follow it. A tensor's data, where given, must be its size. A file can be streamed from
 * its header and its tensors' bytes as they are made, or a stored one recognised by its header.
 */
export function safetensorsHeader (tensors: Map<string, Pick<TensorEntry, 'dtype' | 'shape'> & { data?: Uint8Array }>, metadata?: Record<string, string>): { header: Uint8Array, dataBytes: number } {
  const header: Record<string, unknown> = {}
  if (metadata !== undefined && Object.keys(metadata).length > 0) header[METADATA_KEY] = parseMetadata(metadata)
  let offset = 0
  for (const [name, t] of tensors) {
    if (name.length === 0 || name === METADATA_KEY) throw new SafetensorsError('ERR_BAD_NAME', `tensor name ${shown(JSON.stringify(name))} is reserved or empty`)
    if (!isDtype(t.dtype)) throw new SafetensorsError('ERR_UNKNOWN_DTYPE', `tensor "${shown(name)}": dtype ${shown(t.dtype)} is not supported`)
    const expected = elementCount(name, t.shape) * DTYPE_BYTES[t.dtype]
    if (t.data !== undefined && t.data.byteLength !== expected) {
      throw new SafetensorsError('ERR_SIZE_MISMATCH', `tensor "${shown(name)}": ${t.dtype} ${shown(t.shape)} needs ${expected} bytes, got ${t.data.byteLength}`)
    }
    // Defined, not assigned: a tensor named "__proto__" would otherwise vanish from the header.
    Object.defineProperty(header, name, { value: { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] }, enumerable: true, writable: true, configurable: true })
    offset += expected
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const headerLength = Math.ceil(json.byteLength / 8) * 8
  const out = new Uint8Array(8 + headerLength)
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true)
  out.set(json, 8)
  out.fill(0x20, 8 + json.byteLength, 8 + headerLength)
  return { header: out, dataBytes: offset }
}

function requireLittleEndianHost (): void {
  if (!hostIsLittleEndian) throw new SafetensorsError('ERR_UNSUPPORTED_DTYPE', 'tensor conversion needs a little-endian host')
}

/** A typed view of `data` when it is aligned, otherwise of an aligned copy. */
function alignedBytes (data: Uint8Array, alignment: number): Uint8Array {
  return data.byteOffset % alignment === 0 ? data : data.slice()
}

/** Reads an F32/F16/BF16 tensor as float32 values (an aligned F32 tensor is returned as a view, not a copy). */
export function tensorToFloat32 (entry: TensorEntry): Float32Array {
  requireLittleEndianHost()
  const size = DTYPE_BYTES[entry.dtype]
  if (entry.data.byteLength % (size ?? 1) !== 0) throw new SafetensorsError('ERR_SIZE_MISMATCH', `${entry.dtype} data of ${entry.data.byteLength} bytes is not a whole number of elements`)
  switch (entry.dtype) {
    case 'F32': {
      const d = alignedBytes(entry.data, 4)
      return new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4)
    }
    case 'F16':
    case 'BF16': {
      const d = alignedBytes(entry.data, 2)
      const src = new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2)
      const out = new Float32Array(src.length)
      if (entry.dtype === 'F16') decodeFloat16Array(src, out)
      else decodeBfloat16Array(src, out)
      return out
    }
    default:
      throw new SafetensorsError('ERR_UNSUPPORTED_DTYPE', `cannot read a ${entry.dtype} tensor as float32; expected F32, F16 or BF16`)
  }
}

/** Reads an I64/I32 tensor as int32 values, refusing I64 values outside the int32 range. */
export function tensorToInt32 (entry: TensorEntry): Int32Array {
  requireLittleEndianHost()
  if (entry.dtype === 'I32') {
    if (entry.data.byteLength % 4 !== 0) throw new SafetensorsError('ERR_SIZE_MISMATCH', `I32 data of ${entry.data.byteLength} bytes is not a whole number of elements`)
    const d = alignedBytes(entry.data, 4)
    return new Int32Array(d.buffer, d.byteOffset, d.byteLength / 4)
  }
  if (entry.dtype === 'I64') {
    if (entry.data.byteLength % 8 !== 0) throw new SafetensorsError('ERR_SIZE_MISMATCH', `I64 data of ${entry.data.byteLength} bytes is not a whole number of elements`)
    const d = alignedBytes(entry.data, 4)
    const words = new Int32Array(d.buffer, d.byteOffset, d.byteLength / 4)
    const out = new Int32Array(words.length / 2)
    for (let i = 0; i < out.length; i++) {
      const lo = words[2 * i]
      // In range exactly when the high word is the sign extension of the low word.
      if (words[2 * i + 1] !== (lo < 0 ? -1 : 0)) {
        throw new SafetensorsError('ERR_OUT_OF_RANGE', `I64 element ${i} does not fit in int32`)
      }
      out[i] = lo
    }
    return out
  }
  throw new SafetensorsError('ERR_UNSUPPORTED_DTYPE', `cannot read a ${entry.dtype} tensor as int32; expected I64 or I32`)
}

/** Builds a tensor from float32 values, rounding to F16/BF16 (nearest even) when asked; always copies. */
export function float32ToTensor (data: Float32Array, shape: number[], dtype: 'F32' | 'F16' | 'BF16' = 'F32'): TensorEntry {
  requireLittleEndianHost()
  const count = elementCount('(new)', shape)
  if (count !== data.length) throw new SafetensorsError('ERR_SIZE_MISMATCH', `shape ${shown(shape)} holds ${count} elements but ${data.length} values were given`)
  if (dtype === 'F32') {
    const bytes = new Uint8Array(data.byteLength)
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    return { dtype, shape: [...shape], data: bytes }
  }
  if (dtype !== 'F16' && dtype !== 'BF16') throw new SafetensorsError('ERR_UNSUPPORTED_DTYPE', `cannot write float32 values as ${String(dtype)}`)
  const bits = new Uint16Array(data.length)
  if (dtype === 'F16') encodeFloat16Array(data, bits)
  else encodeBfloat16Array(data, bits)
  return { dtype, shape: [...shape], data: new Uint8Array(bits.buffer) }
}
