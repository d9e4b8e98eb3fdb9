import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import type { Libp2p } from '@libp2p/interface'
import { Coordinator } from '@barnraise/coordinator'
import { CoordinatorClient, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { tempDir } from './support/cluster.ts'

describe('inbound streams per peer', () => {
  let coordinator: Coordinator
  const hosts: Libp2p[] = []
  beforeAll(async () => {
    // A burst of 10 and one stream a second after it, so 30 requests in a row outrun it however slow the machine.
    coordinator = await Coordinator.start({ dataDir: await tempDir('stream-rate'), httpPort: 0, p2pPort: 0, peerLimits: { streamBurst: 10, streamsPerSecond: 1 } })
  })
  afterAll(async () => {
    for (const h of hosts) await h.stop()
    await coordinator.stop()
  })

  test('a peer looping requests gets its burst answered, then reset streams; another peer is answered meanwhile', async () => {
    const client = async (): Promise<CoordinatorClient> => {
      const h = await createAgentHost(await generateKeyPair('Ed25519'))
      hosts.push(h)
      return new CoordinatorClient(h, parseCoordinatorAddress(coordinator.multiaddrs[0]!))
    }
    const looping = await client()
    const outcomes: string[] = []
    const started = Date.now()
    for (let i = 0; i < 30; i++) {
      const err = await looping.heartbeat({ type: 'heartbeat', status: 'idle' }).then(() => undefined, (e: unknown) => e)
      // A stranger's heartbeat is answered with a refusal; a stream past the rate is reset unanswered.
      outcomes.push(err instanceof RefusedError ? err.code : 'reset')
    }
    const seconds = (Date.now() - started) / 1000
    assert.deepEqual(outcomes.slice(0, 10), Array(10).fill('ERR_NOT_ENROLLED'), 'the burst is answered')
    const answered = outcomes.filter((o) => o === 'ERR_NOT_ENROLLED').length
    assert.ok(answered <= 10 + Math.ceil(seconds), `at most the burst and one a second are answered: ${outcomes.join(' ')}`)
    assert.ok(outcomes.includes('reset'), outcomes.join(' '))
    assert.ok(outcomes.every((o) => o === 'ERR_NOT_ENROLLED' || o === 'reset'), outcomes.join(' '))
    const other = await client()
    const err = await other.heartbeat({ type: 'heartbeat', status: 'idle' }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof RefusedError && err.code === 'ERR_NOT_ENROLLED', `another peer has its own allowance: ${String(err)}`)
  })
})
