// A worker thread of GradientPool: computes loss and gradient for its share of a batch, reading
// weights from and writing gradients to buffers shared with the main thread.
import { parentPort } from 'node:worker_threads'
import type { LlamaConfig } from '@barnraise/protocol'
import { lossAndGrad } from '../model/llama.ts'
import { createParamSet } from '../model/params.ts'
import type { ParamSet } from '../model/params.ts'

export interface WorkerInit { type: 'init', config: LlamaConfig, params: SharedArrayBuffer, grads: SharedArrayBuffer }
export interface WorkerStep { type: 'step', inputIds: Int32Array, batch: number, seqLen: number }
export type WorkerReply = { type: 'ready' } | { type: 'done', loss: number } | { type: 'error', code: string | undefined, message: string }

const port = parentPort
if (port === null) throw new Error('gradient-worker.ts runs only as a worker thread')

let params: ParamSet | undefined
let grads: ParamSet | undefined

port.on('message', (msg: WorkerInit | WorkerStep) => {
  try {
    if (msg.type === 'init') {
      params = createParamSet(msg.config, new Float32Array(msg.params))
      grads = createParamSet(msg.config, new Float32Array(msg.grads))
      port.postMessage({ type: 'ready' } satisfies WorkerReply)
    } else {
      if (params === undefined || grads === undefined) throw new Error('step before init')
      const { loss } = lossAndGrad(params, msg.inputIds, msg.batch, msg.seqLen, grads)
      port.postMessage({ type: 'done', loss } satisfies WorkerReply)
    }
  } catch (err) {
    port.postMessage({ type: 'error', code: (err as { code?: string }).code, message: (err as Error).message } satisfies WorkerReply)
  }
})
