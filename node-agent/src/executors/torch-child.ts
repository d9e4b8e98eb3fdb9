// The agent's end of the torch child protocol (torch-executor/README.md): one long-lived
// `barnraise_torch.server` process, length-prefixed JSON frames on its stdin/stdout, every
// frame zod-parsed before use. Requests carry an integer id; the child answers each with one
// `result` or `error` frame, with `progress` frames in between for training.
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { ExecutorError, executorErrorFromChild } from './executor-error.ts'

/** The Python package's folder (torch-executor/ at the repository root). */
export const TORCH_EXECUTOR_DIR = fileURLToPath(new URL('../../../torch-executor/', import.meta.url))

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
      for (const line of lines) if (line.trim() !== '') o.log?.(`torch: ${line}`)
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
          proc.kill('SIGKILL')
          if (child === undefined) reject(err as Error)
          return
        }
        for (const text of texts) {
          let frame: Frame
          try {
            frame = frameSchema.parse(JSON.parse(text))
          } catch (err) {
            const bad = new ExecutorError('ERR_CHILD_PROTOCOL', `the torch child sent a malformed frame (${(err as Error).message.slice(0, 200)})`)
            proc.kill('SIGKILL')
            if (child === undefined) reject(bad)
            else child.#died(bad)
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
        if (frame.id === null) { this.#died(err); return }
        const p = this.#pending.get(frame.id)
        this.#pending.delete(frame.id)
        p?.reject(err)
        return
      }
      case 'fatal': this.#died(executorErrorFromChild(frame.code, frame.message, false)); return
      case 'ready': return
    }
  }

  #died (err: ExecutorError): void {
    this.#exit ??= err
    for (const p of this.#pending.values()) p.reject(this.#closing ? new ExecutorError('ERR_CHILD_CRASHED', 'the torch child was closed', { retryable: true }) : this.#exit)
    this.#pending.clear()
  }

  /**
   * Sends one request and resolves with the child's `result` body (unparsed: the caller owns its
   * schema). Aborting `signal` sends an `abort` frame; the child then answers ERR_ABORTED.
   */
  async request (body: Record<string, unknown>, options: { onProgress?: (p: TorchProgress) => void, signal?: AbortSignal } = {}): Promise<unknown> {
    if (this.#exit !== undefined) throw this.#exit
    const id = this.#nextId++
    const { signal } = options
    const onAbort = (): void => { this.#send({ type: 'abort', id }) }
    try {
      return await new Promise<unknown>((resolve, reject) => {
        this.#pending.set(id, { resolve, reject, ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}) })
        signal?.addEventListener('abort', onAbort, { once: true })
        this.#send({ ...body, id })
      })
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
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
