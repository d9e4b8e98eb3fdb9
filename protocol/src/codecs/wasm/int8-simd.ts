// The int8 codec's SIMD kernels (int8-kernels.wat), loaded once. A fold adds into a sum that
// lives in WebAssembly memory (createFoldTarget), so only the payload is copied in, 1 byte a
// value; a scan copies the payload in and reads back per-block statistics. Where WebAssembly
// SIMD is missing, or a model is too large for one 32-bit memory, callers use their JS loops.
import { WASM_BASE64 } from './int8-kernels.wasm.ts'

interface Kernels {
  fold: (src: number, blocks: number, dst: number, weight: number) => void
  scan: (src: number, blocks: number, out: number) => void
}

const BLOCK_BYTES = 260
const BLOCK_VALUES = 256
/** Blocks copied in per kernel call: 266 KiB of payload, cache-sized. */
const SCRATCH_BLOCKS = 1024
/** Largest memory a fold target takes (a 32-bit memory holds at most 4 GiB; stay well inside). */
const MAX_TARGET_BYTES = 2 ** 31
const PAGE = 65_536

let compiled: WebAssembly.Module | null | undefined

function kernelModule (): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Uint8Array.from(atob(WASM_BASE64), (c) => c.charCodeAt(0)))
    } catch {
      // An engine without SIMD rejects the module: the JS loops serve.
      compiled = null
    }
  }
  return compiled
}

function instantiate (bytes: number): { kernels: Kernels, memory: WebAssembly.Memory } | null {
  const m = kernelModule()
  if (m === null) return null
  try {
    const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / PAGE) })
    return { kernels: new WebAssembly.Instance(m, { env: { memory } }).exports as unknown as Kernels, memory }
  } catch {
    // Out of address space or memory (each WebAssembly memory reserves several GiB of it): the JS loops serve.
    return null
  }
}

interface FoldTarget { kernels: Kernels, memory: WebAssembly.Memory, scratch: number }
const targets = new WeakMap<Float32Array, FoldTarget>()

/**
 * `length` zeros that int8 folds add into with the SIMD kernel, without copying the sum: a
 * Float32Array over its own WebAssembly memory (a plain one where that cannot be had).
 */
export function createFoldTarget (length: number): Float32Array {
  const scratch = Math.ceil(4 * length / 16) * 16
  const total = scratch + SCRATCH_BLOCKS * BLOCK_BYTES
  const made = total <= MAX_TARGET_BYTES ? instantiate(total) : null
  if (made === null) return new Float32Array(length)
  const sum = new Float32Array(made.memory.buffer, 0, length)
  targets.set(sum, { ...made, scratch })
  return sum
}

/** Whether `sum` is a fold target in WebAssembly memory (int8 folds into it run in the SIMD kernel). */
export function isFoldTarget (sum: Float32Array): boolean {
  return targets.has(sum)
}

/**
 * Folds the first `blocks` whole blocks of an int8 payload into `sum` with the kernel, the same
 * floats as int8Codec's JS fold; false (nothing done) when `sum` is not a fold target.
 */
export function foldInt8Blocks (bytes: Uint8Array, blocks: number, weight: number, sum: Float32Array): boolean {
  const t = targets.get(sum)
  if (t === undefined) return false
  const heap = new Uint8Array(t.memory.buffer)
  for (let b = 0; b < blocks; b += SCRATCH_BLOCKS) {
    const n = Math.min(SCRATCH_BLOCKS, blocks - b)
    heap.set(bytes.subarray(b * BLOCK_BYTES, (b + n) * BLOCK_BYTES), t.scratch)
    t.kernels.fold(t.scratch, n, b * BLOCK_VALUES * 4, weight)
  }
  return true
}

let scanner: { kernels: Kernels, memory: WebAssembly.Memory } | null | undefined

/**
 * Per-block statistics of the first `blocks` whole blocks of an int8 payload, three numbers a
 * block: Σq² (exact), max |q| (128 for a -128) and 1 where a -128 appears; null without SIMD.
 */
export function scanInt8Blocks (bytes: Uint8Array, blocks: number): Int32Array | null {
  scanner ??= instantiate(SCRATCH_BLOCKS * (BLOCK_BYTES + 12))
  if (scanner === null) return null
  const out = new Int32Array(3 * blocks)
  const heap = new Uint8Array(scanner.memory.buffer)
  const results = SCRATCH_BLOCKS * BLOCK_BYTES
  for (let b = 0; b < blocks; b += SCRATCH_BLOCKS) {
    const n = Math.min(SCRATCH_BLOCKS, blocks - b)
    heap.set(bytes.subarray(b * BLOCK_BYTES, (b + n) * BLOCK_BYTES), 0)
    scanner.kernels.scan(0, n, results)
    out.set(new Int32Array(scanner.memory.buffer, results, 3 * n), 3 * b)
  }
  return out
}
