// The files the agent and the torch child exchange: weights as safetensors with the checkpoint's
// Hugging Face names (the flat parameter vector is exactly the data section, because tensors are
// laid out in paramSpecs order) and a unit's token batches as one I32 tensor. Both are streamed
// in chunks: a 1B-parameter model is 4 GiB, past what one fs read or write call moves.
import { open } from 'node:fs/promises'
import type { LlamaConfig } from '@barnraise/protocol'
import { paramSpecs, shapeSize } from '@barnraise/trainer'
import type { BatchSource } from './executor.ts'
import { ExecutorError } from './executor-error.ts'

const CHUNK_BYTES = 64 * 1024 * 1024

/** The safetensors header (length prefix included) of a weights file in paramSpecs order. */
function weightsHeader (config: LlamaConfig): { bytes: Uint8Array, dataBytes: number } {
  const header: Record<string, unknown> = {}
  let offset = 0
  for (const { name, shape } of paramSpecs(config)) {
    const size = shapeSize(shape) * 4
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + size] }
    offset += size
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const padded = Math.ceil(json.byteLength / 8) * 8
  const bytes = new Uint8Array(8 + padded).fill(0x20)
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true)
  bytes.set(json, 8)
  return { bytes, dataBytes: offset }
}

/** Writes flat weights as a safetensors file the Python side (and Hugging Face) reads by name. */
export async function writeWeightsFile (path: string, config: LlamaConfig, flat: Float32Array): Promise<void> {
  const { bytes, dataBytes } = weightsHeader(config)
  if (dataBytes !== flat.byteLength) throw new ExecutorError('ERR_EXECUTOR', `weights hold ${flat.length} values but the model has ${dataBytes / 4}`)
  const file = await open(path, 'w')
  try {
    await file.write(bytes)
    const data = new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength)
    for (let at = 0; at < data.byteLength; at += CHUNK_BYTES) await file.write(data.subarray(at, at + CHUNK_BYTES))
  } finally {
    await file.close()
  }
}

async function readExactly (file: Awaited<ReturnType<typeof open>>, into: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < into.byteLength;) {
    const { bytesRead } = await file.read(into, done, Math.min(CHUNK_BYTES, into.byteLength - done), position + done)
    if (bytesRead === 0) throw new ExecutorError('ERR_CHILD_PROTOCOL', 'weights file ended early')
    done += bytesRead
  }
}

/**
 * Reads a weights file written by the child back into one Float32Array. Every tensor must be F32,
 * named and shaped as the config says and stored in paramSpecs order, so the data section is
 * copied in one pass.
 */
export async function readWeightsFile (path: string, config: LlamaConfig): Promise<Float32Array> {
  const file = await open(path, 'r')
  try {
    const { size } = await file.stat()
    const lengthBytes = new Uint8Array(8)
    await readExactly(file, lengthBytes, 0)
    const headerLength = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true))
    if (headerLength > 100_000_000 || 8 + headerLength > size) throw new ExecutorError('ERR_CHILD_PROTOCOL', `${path}: header length ${headerLength} does not fit the ${size}-byte file`)
    const headerBytes = new Uint8Array(headerLength)
    await readExactly(file, headerBytes, 8)
    const header = JSON.parse(new TextDecoder().decode(headerBytes)) as Record<string, { dtype?: unknown, shape?: unknown, data_offsets?: unknown }>
    let offset = 0
    for (const { name, shape } of paramSpecs(config)) {
      const entry = header[name]
      const bytes = shapeSize(shape) * 4
      if (entry?.dtype !== 'F32' || JSON.stringify(entry.shape) !== JSON.stringify(shape) || JSON.stringify(entry.data_offsets) !== JSON.stringify([offset, offset + bytes])) {
        throw new ExecutorError('ERR_CHILD_PROTOCOL', `${path}: tensor ${name} is missing, not F32 ${JSON.stringify(shape)}, or out of checkpoint order`)
      }
      offset += bytes
    }
    if (8 + headerLength + offset !== size) throw new ExecutorError('ERR_CHILD_PROTOCOL', `${path}: ${size} bytes, expected ${8 + headerLength + offset}`)
    const flat = new Float32Array(offset / 4)
    await readExactly(file, new Uint8Array(flat.buffer), 8 + headerLength)
    return flat
  } finally {
    await file.close()
  }
}

/**
 * Writes every inner step's batch as one I32 tensor "tokens" [steps, batch, seqLen + 1], a few
 * steps at a time: a unit of many steps is gigabytes, which must not sit in the agent's memory
 * (the child, too, reads it one step at a time).
 */
export async function writeBatchesFile (path: string, batches: BatchSource, steps: number, batch: number, seqLen: number, signal?: AbortSignal): Promise<void> {
  const window = batch * (seqLen + 1)
  const dataBytes = steps * window * 4
  const header = { tokens: { dtype: 'I32', shape: [steps, batch, seqLen + 1], data_offsets: [0, dataBytes] } }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const padded = Math.ceil(json.byteLength / 8) * 8
  const head = new Uint8Array(8 + padded).fill(0x20)
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true)
  head.set(json, 8)
  const stepsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / (window * 4)))
  const file = await open(path, 'w')
  try {
    await file.write(head)
    for (let first = 0; first < steps; first += stepsPerChunk) {
      signal?.throwIfAborted()
      const count = Math.min(stepsPerChunk, steps - first)
      const chunk = new Int32Array(count * window)
      for (let s = 0; s < count; s++) {
        const b = batches(first + s)
        if (b.length !== window) throw new ExecutorError('ERR_EXECUTOR', `batch ${first + s} holds ${b.length} tokens, expected ${window}`)
        chunk.set(b, s * window)
      }
      await file.write(new Uint8Array(chunk.buffer))
    }
  } finally {
    await file.close()
  }
}
