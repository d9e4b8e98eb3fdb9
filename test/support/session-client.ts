import { createTRPCClient, httpBatchLink } from '@trpc/client'
import type { AppRouter } from '@barnraise/coordinator'

/** A tRPC client with its own session cookie, like one browser profile, and that cookie for raw requests. */
export function sessionClientWithCookie (baseUrl: string): { client: ReturnType<typeof createTRPCClient<AppRouter>>, cookie: () => string } {
  let cookie = ''
  const client = createTRPCClient<AppRouter>({
    links: [httpBatchLink({
      url: new URL('trpc', baseUrl).toString(),
      fetch: async (url, init) => {
        const headers = new Headers(init?.headers as HeadersInit | undefined)
        if (cookie !== '') headers.set('cookie', cookie)
        const res = await fetch(url, { ...init as RequestInit, headers })
        for (const set of res.headers.getSetCookie()) {
          const pair = set.split(';')[0]!
          cookie = /=$/.test(pair) || /Max-Age=0/.test(set) ? '' : pair
        }
        return res
      }
    })]
  })
  return { client, cookie: () => cookie }
}

/** A tRPC client that keeps its own session cookie, like one browser profile. */
export function sessionClient (baseUrl: string): ReturnType<typeof createTRPCClient<AppRouter>> {
  return sessionClientWithCookie(baseUrl).client
}
