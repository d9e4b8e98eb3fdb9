import { createTRPCClient, httpBatchLink } from '@trpc/client'
import type { AppRouter } from '@barnraise/coordinator'

/** A typed tRPC client against a running coordinator, as the dashboard would use it. */
export function apiClient (baseUrl: string): ReturnType<typeof createTRPCClient<AppRouter>> {
  return createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: new URL('trpc', baseUrl).toString() })] })
}
