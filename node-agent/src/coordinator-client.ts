import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p } from '@libp2p/interface'
import {
  BLOB_CHUNK_BYTES, CodedError, ENROLL_PROTOCOL, HEARTBEAT_PROTOCOL, JsonStream, ProtocolError, REPORT_PROTOCOL, WORK_PROTOCOL,
  CHUNK_TIMEOUT_MS, REPORT_ADMISSION_TIMEOUT_MS, REPORT_VERDICT_TIMEOUT_MS, REQUEST_TIMEOUT_MS, TRANSFER_DIAL_TIMEOUT_MS,
  enrollResponseSchema, heartbeatResponseSchema, reportAdmissionSchema, reportResponseSchema, toPlainText, workResponseSchema
} from '@barnraise/protocol'
import type { EnrollRequest, ExecutorKind, HeartbeatRequest, ReportHeader, ReportResponse, ScoreResult, UnitDecline, WorkResponse } from '@barnraise/protocol'
import { z } from 'zod'
import { AGENT_VERSION } from './version.ts'

/** The coordinator said no; retrying the same request will not help. */
export class RefusedError extends CodedError {}

/** Parses the `--coordinator` value, which must name the coordinator's peer id. */
export function parseCoordinatorAddress (value: string): Multiaddr {
  let ma: Multiaddr
  try {
    ma = multiaddr(value)
  } catch (err) {
    throw new Error(`--coordinator "${value}" is not a multiaddr (${(err as Error).message}); copy the line the coordinator prints`)
  }
  if (ma.getComponents().find((c) => c.name === 'p2p') === undefined) {
    throw new Error('--coordinator must end in /p2p/<peer id> so the agent can check who it is talking to')
  }
  return ma
}

const IDENTITY_MISMATCH = /identity key (\S+) does not match expected remote identity key (\S+)/

/**
 * Turns noise's "identity key does not match" (the address names another peer id) into a
 * refusal: no retry reaches a different coordinator, so the agent must stop and say so.
 */
function explainDialFailure (err: unknown, address: Multiaddr): unknown {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const m = e.message.match(IDENTITY_MISMATCH)
    if (m !== null) {
      const where = address.toString().replace(/\/p2p\/.*$/, '')
      return new RefusedError('ERR_WRONG_PEER', `the coordinator at ${where} has peer id ${m[1]}, not ${m[2]} as --coordinator says; copy its address again (the coordinator prints it at start, the dashboard's Nodes page shows it)`)
    }
    for (const inner of (e as { errors?: unknown[] }).errors ?? []) {
      const explained = explainDialFailure(inner, address)
      if (explained instanceof RefusedError) return explained
    }
  }
  return err
}

/** A stream that failed because the connection under it closed before any protocol was spoken. */
function closedAtHandshake (err: unknown): boolean {
  // libp2p rejects with the connection's close Event when it goes away mid-negotiation.
  if (typeof Event !== 'undefined' && err instanceof Event) return true
  const e = err as { name?: string, message?: string }
  return e.name === 'UnexpectedEOFError' || e.name === 'StreamResetError' || e.name === 'ConnectionClosedError' ||
    /stream closed while reading/.test(e.message ?? '')
}

/**
 * Fresh dials in a row the coordinator may close at the handshake before the agent gives up:
 * a coordinator turns a revoked node away there, and says nothing more.
 */
const TURNED_AWAY_LIMIT = 3

/** Request/response calls to the coordinator over its protocols. */
export class CoordinatorClient {
  readonly #libp2p: Libp2p
  readonly #address: Multiaddr
  #turnedAway = 0
  #lastTurnedAway: string | undefined
  /** A unit whose reply did not parse, to hand back with the next plain work request. */
  #unreadable: UnitDecline | undefined

  /** The executor this node trains with, named in every work request (the coordinator picks scorers by it). */
  readonly #executor: ExecutorKind | undefined
  /** Whether the coordinator said, when this node enrolled, that its work requests may name the executor. */
  #namesExecutor = false

  constructor (libp2p: Libp2p, address: Multiaddr, options: { executor?: ExecutorKind } = {}) {
    this.#libp2p = libp2p
    this.#address = address
    this.#executor = options.executor
  }

  async #dial (protocol: string, signal: AbortSignal): Promise<Awaited<ReturnType<Libp2p['dialProtocol']>>> {
    // The connection first, then the stream: a coordinator that is down, full or rate-limiting
    // fails the connection, while one that turns this node away lets the handshake finish and
    // then closes it, so only the stream fails.
    let connection: Connection
    try {
      connection = await this.#libp2p.dial(this.#address, { signal })
    } catch (err) {
      this.#turnedAway = 0
      throw explainDialFailure(err, this.#address)
    }
    try {
      const stream = await connection.newStream(protocol, { signal })
      this.#turnedAway = 0
      return stream
    } catch (err) {
      // Heartbeats and the work loop share a connection: its one close fails both of them, and
      // counts once. Only distinct connections closed in a row mean the node is turned away.
      if (!closedAtHandshake(err)) this.#turnedAway = 0
      else if (connection.id !== this.#lastTurnedAway) this.#turnedAway++
      this.#lastTurnedAway = connection.id
      if (this.#turnedAway >= TURNED_AWAY_LIMIT) {
        throw new RefusedError('ERR_TURNED_AWAY', `the coordinator closed ${this.#turnedAway} connections in a row right after the handshake: this node was most likely revoked; ask your lab admin (a new node is turned away the same way while enrolled nodes fill the coordinator's connections: then ask its operator to raise --max-connections)`)
      }
      throw err
    }
  }

  async #call<S extends z.ZodType> (protocol: string, request: unknown, schema: S): Promise<z.infer<S>> {
    const stream = await this.#dial(protocol, AbortSignal.timeout(REQUEST_TIMEOUT_MS))
    const messages = new JsonStream(stream)
    try {
      await messages.write(request)
      return await messages.read(schema, REQUEST_TIMEOUT_MS)
    } finally {
      await messages.close()
    }
  }

  /** Enrolls (or re-joins) this node; throws RefusedError when the coordinator refuses. */
  async enroll (request: EnrollRequest): Promise<{ nodeId: string, organizationId: string, organizationName: string, rejoined: boolean, workFields?: string[] }> {
    const reply = await this.#call(ENROLL_PROTOCOL, request, enrollResponseSchema)
    if (!reply.ok) throw new RefusedError(reply.code, reply.message)
    // An older coordinator lists no fields and refuses work requests carrying one it does not know.
    this.#namesExecutor = reply.workFields?.includes('executor') === true
    return reply
  }

  /**
   * Asks for work (a unit to train, a report to score, or "wait"), first handing back
   * `decline`'s unit with its reason and answering the last scoring task with `scored`.
   */
  async requestWork (decline?: UnitDecline, scored?: ScoreResult, after?: string): Promise<Exclude<WorkResponse, { kind: 'refused' }>> {
    // A unit this agent could not read goes back on the next plain request (a look-ahead carries
    // no decline), unless the caller hands one back itself; it stays pending until a reply shows
    // the coordinator got it.
    const pending = decline === undefined && after === undefined ? this.#unreadable : undefined
    const handBack = decline ?? pending
    const request = { type: 'work' as const, ...(handBack !== undefined ? { decline: handBack } : {}), ...(scored !== undefined ? { scored } : {}), ...(after !== undefined ? { after } : {}), ...(this.#executor !== undefined && this.#namesExecutor ? { executor: this.#executor } : {}) }
    const raw: unknown = await this.#call(WORK_PROTOCOL, request, z.unknown())
    if (pending !== undefined) this.#unreadable = undefined
    const parsed = workResponseSchema.safeParse(raw)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const problem = `${issue?.path.length ? issue.path.join('.') : 'reply'}: ${issue?.message ?? 'invalid'}`
      const assignmentId = unreadableUnitId(raw)
      if (assignmentId !== undefined) {
        this.#unreadable = {
          assignmentId,
          code: 'ERR_BAD_INPUT',
          message: toPlainText(`barnraise-agent ${AGENT_VERSION} cannot read this work unit (${problem.slice(0, 1500)}); the coordinator may be newer than the agent`, 'multi-line')
        }
      }
      // Retryable (isRetryable): one unit of a newer coordinator, or one bad reply, must not take the node offline.
      throw new ProtocolError('ERR_MALFORMED_MESSAGE', `the work reply is not one this agent can read (${problem})${assignmentId !== undefined ? '; the unit will be handed back' : ''}`)
    }
    const reply = parsed.data
    if (reply.kind === 'refused') throw new RefusedError(reply.code, reply.message)
    return reply
  }

  /** Sends a signed report: the header, then (once admitted) the payload in chunks; returns the verdict. */
  async sendReport (header: ReportHeader, payload: Uint8Array, signal?: AbortSignal): Promise<ReportResponse> {
    const stream = await this.#dial(REPORT_PROTOCOL, signal ?? AbortSignal.timeout(TRANSFER_DIAL_TIMEOUT_MS))
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    try {
      await messages.write(header)
      const admission = await messages.read(reportAdmissionSchema, REPORT_ADMISSION_TIMEOUT_MS)
      if (!admission.proceed) return { ok: false, outcome: 'refused', code: admission.code, message: admission.message }
      for (let i = 0; i < payload.byteLength; i += BLOB_CHUNK_BYTES) {
        await messages.writeFrame(payload.subarray(i, i + BLOB_CHUNK_BYTES), CHUNK_TIMEOUT_MS)
      }
      return await messages.read(reportResponseSchema, REPORT_VERDICT_TIMEOUT_MS)
    } finally {
      await messages.close()
    }
  }

  /**
   * Says this node is alive and returns the peers the coordinator revoked lately (none from a
   * coordinator older than that list); throws RefusedError when the coordinator no longer knows it.
   */
  async heartbeat (request: HeartbeatRequest): Promise<{ revoked: string[] }> {
    const reply = await this.#call(HEARTBEAT_PROTOCOL, request, heartbeatResponseSchema)
    if (!reply.ok) throw new RefusedError(reply.code, reply.message)
    return { revoked: reply.revoked ?? [] }
  }
}

/** The assignment id of a `unit` reply that failed to parse, when that much of it is readable. */
function unreadableUnitId (raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null || (raw as { kind?: unknown }).kind !== 'unit') return undefined
  const unit = (raw as { unit?: unknown }).unit
  const id = typeof unit === 'object' && unit !== null ? (unit as { assignmentId?: unknown }).assignmentId : undefined
  return z.string().uuid().safeParse(id).success ? id as string : undefined
}

/** True for errors that mean "try again later" rather than "you are refused". */
export function isRetryable (err: unknown): boolean {
  if (err instanceof RefusedError) return false
  // A stream that closed under a read is the coordinator restarting or the link dropping. A
  // reply that does not parse (a coordinator newer than this agent, a codec it adds, or a broken
  // one) is retried with backoff too: the next reply may be one this agent reads, and only an
  // explicit refusal should stop a volunteer's node.
  if (err instanceof ProtocolError) return err.code === 'ERR_TIMEOUT' || err.code === 'ERR_STREAM_CLOSED' || err.code === 'ERR_MALFORMED_MESSAGE'
  return true
}
