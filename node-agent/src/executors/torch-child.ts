// The agent's end of the torch child protocol (torch-executor/README.md): one long-lived
// `barnraise_torch.server` process, length-prefixed JSON frames on its stdin/stdout, every
// frame zod-parsed before use. Requests carry an integer id; the child answers each with one
// `result` or `error` frame, with `progress` frames in between for training.
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { z } from 'zod'
import { TORCH_EXECUTOR_DIR } from '@barnraise/torch-executor'
import { ExecutorError, executorErrorFromChild } from './executor-error.ts'


const MAX_FRAME_BYTES = 16 * 1024 * 1024
const STDERR_TAIL_BYTES = 4096

// Runs the server from TORCH_EXECUTOR_DIR whatever the interpreter's flags (-I drops the
// script's folder from sys.path, so it is added here), and fails plainly on a too-old Python.
const BOOT = [
  'import sys',
  'sys.version_info >= (3, 9) or sys.exit("barnraise_torch needs Python 3.9 or newer (3.11 is tested); this is " + sys.version.split()[0])',
  'sys.path.insert(0, sys.argv[1])',
  'from barnraise_torch.server import main',
  'sys.exit(main(sys.argv[2:]))'
].join('\n')

const deviceSchema = z.object({
  name: z.string(),
  kind: z.enum(['cpu', 'cuda']),
  label: z.string(),
  totalBytes: z.number(),
  freeBytes: z.number(),
  capability: z.string().optional(),
  bf16: z.boolean().optional()
})

export const readySchema = z.object({
  type: z.literal('ready'),
  protocol: z.literal(1),
  pid: z.number().int(),
  python: z.string(),
  executable: z.string(),
  torch: z.string(),
  cuda: z.string().nullable(),
  threads: z.number().int(),
  devices: z.array(deviceSchema),
  device: z.string(),
  deviceName: z.string().optional(),
  features: z.object({ sdpa: z.boolean(), fusedAdamw: z.boolean(), bf16: z.boolean(), checkpointing: z.boolean() }),
  /** one entry per device the child trains on (rank 0 is the child itself); older children send none */
  ranks: z.array(z.object({ rank: z.number().int().nonnegative(), device: z.string(), pid: z.number().int() })).min(1).optional()
})

export type TorchReady = z.infer<typeof readySchema>
export type TorchDevice = z.infer<typeof deviceSchema>

const progressSchema = z.object({
  type: z.literal('progress'),
  id: z.number().int(),
  step: z.number().int(),
  steps: z.number().int(),
  loss: z.number().nullable(),
  tokensPerSecond: z.number()
})

export type TorchProgress = z.infer<typeof progressSchema>

const frameSchema = z.discriminatedUnion('type', [
  readySchema,
  z.object({ type: z.literal('fatal'), code: z.string(), message: z.string() }),
  progressSchema,
  z.object({ type: z.literal('result'), id: z.number().int(), result: z.unknown() }),
  z.object({ type: z.literal('error'), id: z.number().int().nullable(), code: z.string(), message: z.string(), retryable: z.boolean() }),
  z.object({ type: z.literal('log'), message: z.string() })
])

type Frame = z.infer<typeof frameSchema>

interface Pending {
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  onProgress?: (p: TorchProgress) => void
}

/** How long a request may take before the agent stops waiting; see request() and torch-executor/README.md. */
export interface RequestOptions {
  onProgress?: (p: TorchProgress) => void
  /** aborting rejects at once with the signal's reason; the child gets `abortGraceMs` to answer, then is killed */
  signal?: AbortSignal
  /**
   * The child is wedged when no answer (and, for a request with `onProgress`, no progress frame)
   * comes within this: it is killed at once and the request rejects with ERR_CHILD_HUNG.
   */
  hungAfterMs?: number
  /** Past this the answer is of no use (a unit past its deadline): handled like an abort, rejecting with `error`. */
  giveUpAfter?: { ms: number, error: () => ExecutorError }
  /** how long an abandoned request's child may take to answer before it is killed (default 10 s, or twice the longest inner step seen, if longer) */
  abortGraceMs?: number
}

/** Default grace after an abort: the child checks for aborts between inner steps, which take well under this on a GPU. */
export const ABORT_GRACE_MS = 10_000

export interface TorchChildOptions {
  python: string
  /** interpreter flags before the boot code (tests use -S -I to hide site-packages) */
  pythonFlags?: string[]
  device: string
  threads: number
  /** the child's log lines and stderr, one line at a time */
  log?: (line: string) => void
}

/** Bytes → frames, for a stream that delivers them in arbitrary pieces. */
class FrameDecoder {
  #buffer: Buffer = Buffer.alloc(0)

  /** Feeds a chunk; returns every complete frame's JSON text. */
  push (chunk: Buffer): string[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    const out: string[] = []
    while (this.#buffer.length >= 4) {
      const n = this.#buffer.readUInt32BE(0)
      if (n > MAX_FRAME_BYTES) throw new ExecutorError('ERR_CHILD_PROTOCOL', `the torch child sent a ${n}-byte frame (cap ${MAX_FRAME_BYTES})`)
      if (this.#buffer.length < 4 + n) break
      out.push(this.#buffer.subarray(4, 4 + n).toString('utf8'))
      this.#buffer = this.#buffer.subarray(4 + n)
    }
    return out
  }
}

/** One frame as bytes: u32 big-endian length, then UTF-8 JSON. */
export function encodeFrame (value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length, 0)
  return Buffer.concat([head, body])
}

/** A running torch child. Create with `TorchChild.start`, which resolves once it said `ready`. */
export class TorchChild {
  readonly ready: TorchReady
  readonly #proc: ChildProcessWithoutNullStreams
  readonly #pending = new Map<number, Pending>()
  readonly #stderrTail: { text: string }
  #nextId = 1
  #exit: ExecutorError | undefined
  #closing = false
  readonly exited: Promise<void>

  private constructor (proc: ChildProcessWithoutNullStreams, ready: TorchReady, stderrTail: { text: string }, exited: Promise<void>) {
    this.#proc = proc
    this.ready = ready
    this.#stderrTail = stderrTail
    this.exited = exited
  }

  /** The child's process id (for diagnostics, and for tests that kill it). */
  get pid (): number { return this.ready.pid }

  /** Whether the process is gone (crashed or closed). */
  get dead (): boolean { return this.#exit !== undefined || this.#proc.exitCode !== null || this.#proc.signalCode !== null }

  /**
   * Spawns the server and waits for its `ready` frame. A `fatal` frame (torch missing, CUDA
   * unavailable…) or an early exit rejects with an ExecutorError that says what to install.
   */
  static async start (o: TorchChildOptions, timeoutMs = 120_000): Promise<TorchChild> {
    const args = [...(o.pythonFlags ?? []), '-c', BOOT, TORCH_EXECUTOR_DIR, '--device', o.device, '--threads', String(o.threads)]
    const proc = spawn(o.python, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })
    const decoder = new FrameDecoder()
    const tail = { text: '' }
    let child: TorchChild | undefined
    let partial = ''
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      tail.text = (tail.text + chunk).slice(-STDERR_TAIL_BYTES)
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) if (line.trim() !== '') o.log?.(`torch: ${line.slice(0, STDERR_TAIL_BYTES)}`)
      // A line that never ends (a message quoting a hostile file's bytes) is not kept growing.
      if (partial.length > STDERR_TAIL_BYTES) { o.log?.(`torch: ${partial.slice(0, STDERR_TAIL_BYTES)} … (line cut)`); partial = '' }
    })
    proc.stdin.on('error', () => { /* EPIPE when the child died; its exit handler reports it */ })
    return await new Promise<TorchChild>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL')
        reject(new ExecutorError('ERR_CHILD_CRASHED', `the torch child did not start within ${timeoutMs / 1000} s; last output: ${tail.text.trim() || '(none)'}`, { retryable: true }))
      }, timeoutMs)
      const exited = new Promise<void>((resolveExit) => {
        proc.once('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(timer)
          if (err.code === 'ENOENT') {
            reject(new ExecutorError('ERR_PYTHON_MISSING', `no Python interpreter at "${o.python}"; install Python 3.11 (\`sudo apt install python3 python3-torch\` on Debian/Ubuntu) or pass --python PATH`))
          } else {
            reject(new ExecutorError('ERR_PYTHON_MISSING', `could not start "${o.python}": ${err.message}`))
          }
          resolveExit()
        })
        proc.once('exit', (code, signal) => {
          clearTimeout(timer)
          const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`
          const last = tail.text.trim().split('\n').slice(-6).join(' | ')
          const tooOld = /needs Python 3\.9 or newer/.test(tail.text)
          const err = tooOld
            ? new ExecutorError('ERR_PYTHON_TOO_OLD', `${o.python}: ${last}; install Python 3.11 or pass --python PATH`)
            : new ExecutorError('ERR_CHILD_CRASHED', `the torch child (${o.python}) ${how}${last === '' ? '' : `; last output: ${last}`}`, { retryable: true })
          if (child === undefined) reject(err)
          else child.#died(err)
          resolveExit()
        })
      })
      proc.stdout.on('data', (chunk: Buffer) => {
        let texts: string[]
        try {
          texts = decoder.push(chunk)
        } catch (err) {
          // Recorded before the kill, so pending requests learn the protocol error rather than "killed by SIGKILL".
          if (child === undefined) reject(err as Error)
          else child.#died(err as ExecutorError)
          proc.kill('SIGKILL')
          return
        }
        for (const text of texts) {
          let frame: Frame
          try {
            frame = frameSchema.parse(JSON.parse(text))
          } catch (err) {
            const bad = new ExecutorError('ERR_CHILD_PROTOCOL', `the torch child sent a malformed frame (${(err as Error).message.slice(0, 200)})`)
            if (child === undefined) reject(bad)
            else child.#died(bad)
            proc.kill('SIGKILL')
            return
          }
          if (child === undefined) {
            if (frame.type === 'ready') {
              clearTimeout(timer)
              child = new TorchChild(proc, frame, tail, exited)
              resolve(child)
            } else if (frame.type === 'fatal') {
              clearTimeout(timer)
              reject(executorErrorFromChild(frame.code, frame.message, false))
            } else if (frame.type === 'log') {
              o.log?.(`torch: ${frame.message}`)
            }
          } else {
            child.#receive(frame, o.log)
          }
        }
      })
    })
  }

  #receive (frame: Frame, log: ((line: string) => void) | undefined): void {
    switch (frame.type) {
      case 'log': log?.(`torch: ${frame.message}`); return
      case 'progress': this.#pending.get(frame.id)?.onProgress?.(frame); return
      case 'result': {
        const p = this.#pending.get(frame.id)
        this.#pending.delete(frame.id)
        p?.resolve(frame.result)
        return
      }
      case 'error': {
        const err = executorErrorFromChild(frame.code, frame.message, frame.retryable)
        // An error that answers no request means the child gave up on the stream: it must not live on beside its replacement.
        if (frame.id === null) { this.#kill(err); return }
        const p = this.#pending.get(frame.id)
        this.#pending.delete(frame.id)
        p?.reject(err)
        return
      }
      // The server finishes its current request after a fatal frame; on a GPU its replacement would share the memory meanwhile.
      case 'fatal': this.#kill(executorErrorFromChild(frame.code, frame.message, false)); return
      case 'ready': return
    }
  }

  #died (err: ExecutorError): void {
    this.#exit ??= err
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of pending) p.reject(this.#closing ? new ExecutorError('ERR_CHILD_CRASHED', 'the torch child was closed', { retryable: true }) : this.#exit)
  }

  /** Marks the child dead with `err` as the cause and kills it, so that the next request starts a fresh one. */
  #kill (err: ExecutorError): void {
    this.#died(err)
    this.#proc.kill('SIGKILL')
  }

  /**
   * Sends one request and resolves with the child's `result` body (unparsed: the caller owns its
   * schema). Aborting `signal`, or passing `giveUpAfter`, rejects at once and sends an `abort`
   * frame; a child that has not answered `abortGraceMs` later is killed. A child silent for
   * `hungAfterMs` is killed at once (ERR_CHILD_HUNG).
   */
  async request (body: Record<string, unknown>, options: RequestOptions = {}): Promise<unknown> {
    if (this.#exit !== undefined) throw this.#exit
    const { signal } = options
    signal?.throwIfAborted()
    const id = this.#nextId++
    const graceMs = options.abortGraceMs ?? ABORT_GRACE_MS
    return await new Promise<unknown>((resolve, reject) => {
      let hung: NodeJS.Timeout | undefined
      let late: NodeJS.Timeout | undefined
      // The child notices an abort between inner steps: the longest step seen sets how long that may take.
      let lastProgressAt = performance.now()
      let longestStepMs = 0
      const cleanup = (): void => {
        clearTimeout(hung)
        clearTimeout(late)
        signal?.removeEventListener('abort', onAbort)
      }
      const armHung = (): void => {
        if (options.hungAfterMs === undefined) return
        clearTimeout(hung)
        hung = setTimeout(() => {
          const what = options.onProgress !== undefined ? 'sent no progress' : 'did not answer'
          this.#kill(new ExecutorError('ERR_CHILD_HUNG', `the torch child ${what} for ${options.hungAfterMs! / 1000} s on a ${String(body.type)} request; killed it (a fresh one starts for the next request)`, { retryable: true }))
        }, options.hungAfterMs)
      }
      // The caller stops waiting now; the child's late answer only tells us it is still sound.
      const giveUp = (err: unknown): void => {
        if (this.#pending.get(id) !== entry) return
        cleanup()
        const waitMs = Math.min(Math.max(graceMs, 2 * longestStepMs), 2 ** 31 - 1)
        const kill = setTimeout(() => {
          this.#kill(new ExecutorError('ERR_CHILD_HUNG', `the torch child did not stop a ${String(body.type)} request within ${Math.round(waitMs / 1000)} s of being aborted; killed it`, { retryable: true }))
        }, waitMs)
        const settle = (): void => { clearTimeout(kill) }
        this.#pending.set(id, { resolve: settle, reject: settle })
        this.#send({ type: 'abort', id })
        reject(err)
      }
      const onAbort = (): void => { giveUp(signal!.reason) }
      const entry: Pending = {
        resolve: (value) => { cleanup(); resolve(value) },
        reject: (err) => { cleanup(); reject(err) },
        ...(options.onProgress !== undefined
          ? {
              onProgress: (p: TorchProgress) => {
                const now = performance.now()
                longestStepMs = Math.max(longestStepMs, now - lastProgressAt)
                lastProgressAt = now
                armHung()
                options.onProgress!(p)
              }
            }
          : {})
      }
      this.#pending.set(id, entry)
      signal?.addEventListener('abort', onAbort, { once: true })
      armHung()
      if (options.giveUpAfter !== undefined) {
        const { ms, error } = options.giveUpAfter
        late = setTimeout(() => { giveUp(error()) }, ms)
      }
      this.#send({ ...body, id })
    })
  }

  #send (value: unknown): void {
    if (!this.#proc.stdin.writable) return
    this.#proc.stdin.write(encodeFrame(value))
  }

  /** Asks the child to finish (it waits for a pending state write), killing it after `graceMs`. */
  async close (graceMs = 30_000): Promise<void> {
    this.#closing = true
    if (this.dead) return
    this.#send({ type: 'shutdown' })
    this.#proc.stdin.end()
    const timer = setTimeout(() => { this.#proc.kill('SIGKILL') }, graceMs)
    await this.exited
    clearTimeout(timer)
  }
}
