// The sizes a unit's blobs must have, known before they are downloaded: a blob's size is the
// coordinator's word, up to the protocol's 8 GiB cap, and a base is read whole into memory, so a
// small model's unit announcing an 8 GiB base would cost that much memory before its bytes were
// found not to be the model. Shards have no such size: a unit names token ranges in them, and a
// shard may hold far more tokens than the unit reads (shards of gigabytes).
import { safetensorsHeader } from '@barnraise/protocol'
import type { LlamaConfig } from '@barnraise/protocol'
import { momentumHeader, paramSpecs } from '@barnraise/trainer'

/** The length of a checkpoint of `config` as the coordinator stores it (storedCheckpointBytes: F32 safetensors, in paramSpecs order). */
export function storedCheckpointByteLength (config: LlamaConfig): number {
  const { header, dataBytes } = safetensorsHeader(new Map(paramSpecs(config).map((s) => [s.name, { dtype: 'F32' as const, shape: s.shape }])), { format: 'pt' })
  return header.byteLength + dataBytes
}

/** The length of an outer-momentum blob of `length` values (writeMomentum's). */
export function momentumByteLength (length: number): number {
  return momentumHeader(length).byteLength + 4 * length
}

/**
 * The most an outer-momentum blob of `length` values can be: F32 values after the largest header
 * readMomentum reads (4 KiB). Its layout is not fixed (the coordinator reads one not in
 * writeMomentum's whole), so it is bounded, not sized.
 */
export function momentumMaxBytes (length: number): number {
  return 8 + MOMENTUM_MAX_HEADER_BYTES + 4 * length
}

/** readMomentum's maxHeaderBytes. */
const MOMENTUM_MAX_HEADER_BYTES = 4096
