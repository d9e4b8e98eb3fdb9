import type { WorkUnit } from '@barnraise/protocol'
import type { CoordinatorClient } from './coordinator-client.ts'
import { sleep } from './backoff.ts'

/** A look ahead in progress; `stop` ends its polling and waits for a fetch already under way (not for a question). */
export interface LookAhead {
  stop: () => Promise<void>
}

export interface LookAheadOptions {
  client: Pick<CoordinatorClient, 'requestWork'>
  /** The agent's own signal: aborting it ends a fetch too. */
  signal: AbortSignal
  say: (line: string) => void
}

/** Polls at most this often, whatever the coordinator suggests, so the next unit is seen soon after its round opens. */
const MAX_POLL_MS = 5_000

/**
 * While unit `current` trains, asks the coordinator which unit follows it and fetches that unit's
 * inputs (its base and shards) into the cache, so the next unit starts without waiting on the
 * network: the point of overlapped rounds (docs/overlap.md). Failures only cost the head start;
 * the work loop fetches whatever is missing itself.
 */
export function startLookAhead (o: LookAheadOptions, current: WorkUnit, fetchInputs: (next: WorkUnit) => Promise<void>): LookAhead {
  const polling = new AbortController()
  const signal = AbortSignal.any([o.signal, polling.signal])
  // A held question is left to finish on its own when the look ahead stops (its answer is then
  // ignored); only a fetch under way is waited for.
  let fetching: Promise<void> | undefined
  const task = (async (): Promise<void> => {
    while (!signal.aborted) {
      let reply
      try {
        reply = await o.client.requestWork(undefined, undefined, current.assignmentId)
      } catch (err) {
        if (!signal.aborted) o.say(`agent: ${current.runName} round ${current.round}: could not look ahead to the next unit (${(err as Error).message}); it is fetched when this one is done`)
        return
      }
      if (signal.aborted) return
      if (reply.kind === 'unit') {
        const next = reply.unit
        fetching = fetchInputs(next).catch((err: unknown) => {
          if (!o.signal.aborted) o.say(`agent: ${current.runName} round ${next.round}: could not fetch the next unit's inputs ahead (${(err as Error).message}); they are fetched when it starts`)
        })
        await fetching
        return
      }
      if (!await sleep(Math.min(MAX_POLL_MS, 'retryAfterMs' in reply ? reply.retryAfterMs : MAX_POLL_MS), signal)) return
    }
  })()
  return {
    stop: async () => {
      polling.abort()
      await fetching
    }
  }
}
