// Worker thread body for worker-call.test.ts: does what the test's workerData says, so each way a
// worker call can end is exercised on a real thread.
import { parentPort, workerData } from 'node:worker_threads'
import { ModelError } from '../model/model-error.ts'

export type FixtureJob =
  | { do: 'echo', value: unknown }
  | { do: 'measure', buffer: ArrayBuffer }
  | { do: 'throw' }
  | { do: 'exit' }
  | { do: 'progress', steps: number }
  | { do: 'hang', ticks: Int32Array }

const job = workerData as FixtureJob
switch (job.do) {
  case 'echo':
    parentPort!.postMessage({ echoed: job.value })
    break
  case 'measure':
    parentPort!.postMessage({ bytes: job.buffer.byteLength })
    break
  case 'throw':
    throw new ModelError('ERR_BAD_INPUT', 'the worker found bad input')
  case 'exit':
    process.exit(3)
    break
  case 'progress':
    for (let i = 1; i <= job.steps; i++) parentPort!.postMessage({ type: 'progress', step: i })
    parentPort!.postMessage({ type: 'done', steps: job.steps })
    break
  case 'hang':
    // Counts in memory the test shares, so the test can see the thread stop.
    parentPort!.postMessage({ type: 'started' })
    setInterval(() => { Atomics.add(job.ticks, 0, 1) }, 2)
    break
}
