import { useRef } from 'react'
import { useQueryClient } from '@tanstack/react-query'
import { useSubscription } from '@trpc/tanstack-react-query'
import { useTRPC } from './trpc.ts'

type Topic = 'nodes' | 'runs' | 'ledger' | 'pledges' | 'datasets'

/**
 * Routers whose answers are computed from another topic's tables: a lab's overview counts its
 * nodes and ledger rows; pledges show compute delivered per the ledger and the run's status;
 * a run's metrics chart its rounds, ledger rows and pledges. (A run waiting for its dataset
 * shows the dataset's progress: the coordinator publishes `runs` for it when the dataset moves.)
 */
const ALSO_AFFECTS: Record<Topic, string[]> = {
  nodes: ['labs'],
  runs: ['pledges', 'metrics'],
  ledger: ['labs', 'pledges', 'metrics'],
  pledges: ['metrics'],
  datasets: []
}

/** Whether the dashboard is receiving live change events right now. */
export type LiveState = 'connecting' | 'live' | 'reconnecting'

/**
 * Subscribes once, app-wide, to `live.changes` (SSE) and invalidates the queries of the topics
 * each message names (the coordinator merges changes into at most a few messages a second): `nodes` → every `nodes.*` query, `runs` → every `runs.*` query (run
 * details included), and so on. Events carry no data, only what to refetch. After a
 * reconnect every query is invalidated, since events may have been missed meanwhile.
 */
export function useLiveChanges (): LiveState {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const startedBefore = useRef(false)
  const subscription = useSubscription(trpc.live.changes.subscriptionOptions(undefined, {
    onStarted: () => {
      if (startedBefore.current) void queryClient.invalidateQueries()
      startedBefore.current = true
    },
    onData: (batch) => {
      // tRPC query keys start with the procedure path, e.g. [['nodes', 'list'], {...}];
      // [[topic]] matches every procedure under that router.
      const routers = new Set(batch.topics.flatMap((topic) => [topic, ...ALSO_AFFECTS[topic]]))
      for (const router of routers) void queryClient.invalidateQueries({ queryKey: [[router]] })
    }
  }))
  if (subscription.status === 'pending') return 'live'
  if (subscription.status === 'error' || (subscription.status === 'connecting' && startedBefore.current)) return 'reconnecting'
  return 'connecting'
}
