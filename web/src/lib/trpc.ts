import { QueryClient } from '@tanstack/react-query'
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client'
import { createTRPCContext } from '@trpc/tanstack-react-query'
import type { inferRouterOutputs } from '@trpc/server'
// Type-only: the dashboard never bundles coordinator code, it only borrows the API's shape.
import type { AppRouter } from '@barnraise/coordinator'

/** The API lives on the same origin as the dashboard (the Vite dev server proxies it). */
const API_URL = '/trpc'

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>()

export type RouterOutputs = inferRouterOutputs<AppRouter>
export type NodeSummary = RouterOutputs['nodes']['list'][number]
export type RunSummary = RouterOutputs['runs']['list'][number]

export function makeQueryClient (): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        // Live events invalidate queries when something changes, so a short staleness is fine.
        staleTime: 2_000,
        // Fail fast enough that "coordinator unreachable" shows within a few seconds.
        retry: 1,
        retryDelay: 1_000
      }
    }
  })
}

/** Queries and mutations go batched over HTTP; subscriptions stream over SSE. */
export function makeTrpcClient (): ReturnType<typeof createTRPCClient<AppRouter>> {
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url: API_URL }),
        false: httpBatchLink({ url: API_URL })
      })
    ]
  })
}
