// Worker thread body for scoring-task.ts's torch path: another node's report decoded into Δ
// (flat, checkpoint order) off the agent's event loop, moved back rather than copied.
import { parentPort, workerData } from 'node:worker_threads'
import { decodePseudoGradient } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'

export interface DeltaJob { codec: CodecName, payload: Uint8Array, length: number }

const job = workerData as DeltaJob
const delta = decodePseudoGradient(job.codec, job.payload, job.length)
// A view over part of a larger buffer cannot be moved: copy it out first.
const whole = delta.byteOffset === 0 && delta.byteLength === delta.buffer.byteLength && delta.buffer instanceof ArrayBuffer ? delta : delta.slice()
parentPort!.postMessage(whole, [whole.buffer as ArrayBuffer])
