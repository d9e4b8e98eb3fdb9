import { test } from 'vitest'
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { WorkerCallError, callWorker } from './worker-call.ts'
import type { FixtureJob } from './worker-call-fixture.ts'

const fixture = new URL('./worker-call-fixture.ts', import.meta.url)
const what = 'the test worker'

/** A call to the fixture with `job`, under `signal`. */
async function call<Result> (job: FixtureJob, signal?: AbortSignal, transferList?: ArrayBuffer[]): Promise<Result> {
  return await callWorker<Result>(fixture, { what, workerData: job, signal, transferList })
}

test('the worker\'s result comes back; transferred buffers are moved, not copied', async () => {
  const signal = new AbortController().signal
  assert.deepEqual(await call({ do: 'echo', value: { n: 42 } }, signal), { echoed: { n: 42 } })
  assert.equal(getEventListeners(signal, 'abort').length, 0, 'the abort listener is removed once the result arrived')
  const buffer = new ArrayBuffer(1024)
  assert.deepEqual(await call({ do: 'measure', buffer }, undefined, [buffer]), { bytes: 1024 })
  assert.equal(buffer.byteLength, 0, 'the caller\'s buffer was detached')
})

test('an error thrown in the worker rejects the call with its message and code', async () => {
  const signal = new AbortController().signal
  await assert.rejects(call({ do: 'throw' }, signal), (err: Error & { code?: string }) => {
    assert.equal(err.message, 'the worker found bad input')
    assert.equal(err.code, 'ERR_BAD_INPUT')
    return true
  })
  assert.equal(getEventListeners(signal, 'abort').length, 0)
})

test('a worker that exits without a result rejects with ERR_WORKER_EXITED, or the caller\'s own error', async () => {
  const signal = new AbortController().signal
  await assert.rejects(call({ do: 'exit' }, signal), (err: unknown) => {
    assert.ok(err instanceof WorkerCallError)
    assert.equal(err.code, 'ERR_WORKER_EXITED')
    assert.equal(err.message, 'the test worker stopped (exit 3) before finishing')
    return true
  })
  assert.equal(getEventListeners(signal, 'abort').length, 0)
  await assert.rejects(callWorker(fixture, { what, workerData: { do: 'exit' }, exitError: (code) => new Error(`gone with ${code}`) }), /gone with 3/)
})

test('aborting terminates the worker and rejects with an AbortError; an aborted signal starts nothing', async () => {
  const stop = new AbortController()
  const ticks = new Int32Array(new SharedArrayBuffer(4))
  let resolveStarted = (): void => {}
  const started = new Promise<void>((resolve) => { resolveStarted = resolve })
  const running = callWorker(fixture, {
    what,
    workerData: { do: 'hang', ticks } satisfies FixtureJob,
    signal: stop.signal,
    onMessage: () => { resolveStarted(); return undefined }
  })
  await started
  // Until it has ticked at all (a loaded machine may not run the thread for a while), bounded.
  for (let i = 0; i < 500 && Atomics.load(ticks, 0) === 0; i++) await sleep(10)
  assert.ok(Atomics.load(ticks, 0) > 0, 'the worker runs')
  stop.abort()
  await assert.rejects(running, { name: 'AbortError' })
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0)
  const after = Atomics.load(ticks, 0)
  await sleep(50)
  assert.equal(Atomics.load(ticks, 0), after, 'the thread no longer runs')

  await assert.rejects(call({ do: 'echo', value: 1 }, stop.signal), { name: 'AbortError' })
})

test('messages along the way reach onMessage until one is the result; a throw there rejects the call', async () => {
  type Message = { type: 'progress', step: number } | { type: 'done', steps: number }
  const steps: number[] = []
  const result = await callWorker<number, Message>(fixture, {
    what,
    workerData: { do: 'progress', steps: 3 } satisfies FixtureJob,
    onMessage: (m) => {
      if (m.type === 'progress') { steps.push(m.step); return undefined }
      return { result: m.steps }
    }
  })
  assert.equal(result, 3)
  assert.deepEqual(steps, [1, 2, 3])
  await assert.rejects(callWorker<number, Message>(fixture, {
    what,
    workerData: { do: 'progress', steps: 3 } satisfies FixtureJob,
    onMessage: () => { throw new Error('a message the caller refuses') }
  }), /a message the caller refuses/)
})
