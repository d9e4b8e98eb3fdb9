// Behind a trusted proxy that writes the client's port into X-Forwarded-For ("ip:port",
// "[ipv6]:port"), per-address limits still count the client once, not once per source port.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Coordinator } from '@barnraise/coordinator'
import { tempDir } from './support/cluster.ts'
import { sessionClient } from './support/session-client.ts'

test('an X-Forwarded-For entry with a port, or an IPv6 one in brackets, is keyed as its address', async () => {
  const coordinator = await Coordinator.start({ dataDir: join(await tempDir('forwarded'), 'install'), httpPort: 0, p2pPort: 0, trustProxy: true })
  try {
    await sessionClient(coordinator.url).auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', setupCode: coordinator.setupCode! })
    const guess = async (forwardedFor: string): Promise<number> => {
      const res = await fetch(new URL('trpc/auth.signIn', coordinator.url), {
        method: 'POST',
        body: JSON.stringify({ email: 'root@example.org', password: 'a-wrong-guess' }),
        headers: { 'content-type': 'application/json', 'x-forwarded-for': `198.51.100.99, ${forwardedFor}` }
      })
      await res.arrayBuffer()
      return res.status
    }
    // Ten guesses at one account from one address hold it back there, whichever port each came from.
    for (let port = 40_000; port < 40_010; port++) assert.equal(await guess(`203.0.113.7:${port}`), 400)
    assert.equal(await guess('203.0.113.7:50000'), 429, 'a new source port is the same address')
    assert.equal(await guess('203.0.113.7'), 429, 'and so is the address without one')
    // IPv6 in brackets, with or without a port, is its /64 like a bare one.
    for (let i = 0; i < 10; i++) assert.equal(await guess(i % 2 === 0 ? `[2001:db8:5:6::${i + 1}]:443` : `[2001:db8:5:6::${i + 1}]`), 400)
    assert.equal(await guess('2001:db8:5:6::ffff'), 429, 'another address in that /64')
    assert.equal(await guess('198.51.100.7:40000'), 400, 'another client is counted on its own')
  } finally {
    await coordinator.stop()
  }
})
