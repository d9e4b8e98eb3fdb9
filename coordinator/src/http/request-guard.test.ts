import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { test } from 'vitest'
import { crossSiteRefusal, foreignOriginRefusal } from './request-guard.ts'

const request = (headers: Record<string, string>, method = 'POST'): IncomingMessage => ({ method, headers: { 'content-type': 'application/json', ...headers } }) as unknown as IncomingMessage

test('a mutation must be JSON and, when the browser names its origin, come from the host it addressed', () => {
  assert.equal(crossSiteRefusal(request({ origin: 'https://barnraise.example', host: 'barnraise.example' })), null)
  assert.equal(crossSiteRefusal(request({ host: 'barnraise.example' })), null, 'no Origin (a script, curl): the JSON body is the guard')
  assert.match(crossSiteRefusal(request({ 'content-type': 'text/plain', host: 'barnraise.example' }))!, /JSON body/)
  assert.match(crossSiteRefusal(request({ origin: 'https://evil.example', host: 'barnraise.example' }))!, /requests from https:\/\/evil\.example may not change anything here$/)
  assert.match(crossSiteRefusal(request({ origin: 'null', host: 'barnraise.example' }))!, /opaque origin/)
  assert.match(crossSiteRefusal(request({ 'sec-fetch-site': 'cross-site', origin: 'https://barnraise.example', host: 'barnraise.example' }))!, /cross-site/)
  assert.equal(crossSiteRefusal(request({ origin: 'https://evil.example' }, 'GET')), null, 'reads change nothing')
})

test('behind a trusted proxy that rewrites Host, the host the browser asked for is the proxy\'s X-Forwarded-Host; without --trust-proxy that header counts for nothing', () => {
  // nginx's default proxy_pass: Host is the upstream's address, X-Forwarded-Host (when set) the browser's.
  const proxied = { origin: 'https://barnraise.example', host: '127.0.0.1:8080', 'x-forwarded-host': 'barnraise.example' }
  assert.equal(foreignOriginRefusal(request(proxied), { trustProxy: true }), null)
  assert.match(foreignOriginRefusal(request(proxied))!, /may not change anything here$/, 'not trusted: Host decides')
  // A proxy that writes neither says so in the refusal, for the operator.
  assert.match(foreignOriginRefusal(request({ origin: 'https://barnraise.example', host: '127.0.0.1:8080' }), { trustProxy: true })!,
    /the request was for 127\.0\.0\.1:8080: a reverse proxy must pass the host the browser asked for, as Host or X-Forwarded-Host/)
  // The last entry is the one the trusted proxy wrote; one a client sent ahead of it does not count.
  assert.match(foreignOriginRefusal(request({ origin: 'https://evil.example', host: '127.0.0.1:8080', 'x-forwarded-host': 'evil.example, barnraise.example' }), { trustProxy: true })!, /evil\.example may not/)
  assert.match(foreignOriginRefusal(request({ ...proxied, origin: 'https://evil.example' }), { trustProxy: true })!, /evil\.example may not/)
})
