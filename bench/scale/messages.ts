// What bench/scale.bench.ts and its agent processes (bench/scale/agent-worker.ts) say to each other.
import type { LatencyCounts } from './latency-histogram.ts'

/** The protocols a simulated agent times (client side: stream open, request, reply). */
export type Protocol = 'enroll' | 'heartbeat' | 'work' | 'report'

export const PROTOCOLS: Protocol[] = ['enroll', 'heartbeat', 'work', 'report']

export interface WorkerInit {
  /** the coordinator's multiaddr, ending in /p2p/<peer id> */
  multiaddr: string
  token: string
  /** agents in this process, numbered from `firstIndex` */
  count: number
  firstIndex: number
  heartbeatMs: number
  /** how long a simulated agent "trains" a unit before reporting it */
  trainMs: number
  /** how long a waiting agent sleeps before asking again; default the coordinator's retryAfterMs, as a real agent does */
  pollMs?: number
  /** the run's model size: each agent's int8 payload is made for it before the storm */
  paramCount: number
  /** where the agents' key files go */
  keyDir: string
}

/** Wall-clock milliseconds (Date.now()), comparable between the processes of one machine. */
export type AgentEvent =
  | { kind: 'enrolled', agent: number, at: number, attempts: number }
  | { kind: 'unit', agent: number, round: number, at: number }
  | { kind: 'sent', agent: number, round: number, at: number }
  | { kind: 'verdict', agent: number, round: number, at: number, ok: boolean, code: string }

export type ParentMessage =
  | { type: 'init', init: WorkerInit }
  | { type: 'go' }
  | { type: 'stop' }

export type WorkerMessage =
  | { type: 'ready', setupMs: number, rssBytes: number }
  | { type: 'events', events: AgentEvent[] }
  | { type: 'fatal', message: string }
  | { type: 'done', latencies: Record<Protocol, LatencyCounts>, errors: Record<string, number>, firstMessages: Record<string, string>, rssBytes: number }
