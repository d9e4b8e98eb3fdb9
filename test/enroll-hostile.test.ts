import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { ENROLL_PROTOCOL, HEARTBEAT_PROTOCOL, enrollResponseSchema, decodeJsonMessage } from '@barnraise/protocol'
import { createAgentHost } from '@barnraise/node-agent'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningCoordinator } from './support/cluster.ts'
import { apiClient } from './support/api-client.ts'

/** Sends one raw frame on the enroll protocol and returns the decoded reply (or the error). */
async function sendRaw (client: Libp2p, address: string, protocol: string, payload: Uint8Array): Promise<{ code: string } | Error> {
  const stream = await client.dialProtocol(multiaddr(address), protocol, { signal: AbortSignal.timeout(10_000) })
  const lp = lpStream(stream, { maxDataLength: 16 * 1024 * 1024 })
  try {
    await lp.write(payload, { signal: AbortSignal.timeout(10_000) })
    const reply = decodeJsonMessage((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray(), enrollResponseSchema)
    if (reply.ok) throw new Error('hostile message was accepted')
    return { code: reply.code }
  } catch (err) {
    return err as Error
  } finally {
    stream.abort(new Error('done'))
  }
}

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

describe('hostile enrollment messages', () => {
  let coordinator: RunningCoordinator
  let client: Libp2p
  beforeAll(async () => {
    coordinator = await startCoordinator()
    client = await createAgentHost(await generateKeyPair('Ed25519'))
  })
  afterAll(async () => {
    await client.stop()
    await coordinator.stop()
  })

  test('malformed, oversized and unenrolled messages are refused and the coordinator keeps serving', async () => {
    const api = apiClient(coordinator.url)
    const token = await coordinator.createToken('Hostile Lab', { uses: 5 })
    const hardware = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'c', cpuCores: 1, memoryBytes: 1, gpus: [] }

    const cases: Array<[string, string, Uint8Array, RegExp]> = [
      ['not JSON', ENROLL_PROTOCOL, new TextEncoder().encode('{{{ definitely not json'), /ERR_MALFORMED_MESSAGE/],
      ['invalid UTF-8', ENROLL_PROTOCOL, new Uint8Array([0xff, 0xfe, 0xfd]), /ERR_MALFORMED_MESSAGE/],
      ['wrong shape', ENROLL_PROTOCOL, json({ type: 'enroll', token, hardware: { cpuCores: 'many' } }), /ERR_MALFORMED_MESSAGE/],
      ['unknown field', ENROLL_PROTOCOL, json({ type: 'enroll', token, agentVersion: '1', hardware, extra: true }), /ERR_MALFORMED_MESSAGE/],
      ['negative memory', ENROLL_PROTOCOL, json({ type: 'enroll', token, agentVersion: '1', hardware: { ...hardware, memoryBytes: -1 } }), /ERR_MALFORMED_MESSAGE/],
      ['oversized (1 MiB)', ENROLL_PROTOCOL, new Uint8Array(1024 * 1024).fill(0x20), /ERR_MESSAGE_TOO_LARGE|reset|closed|abort/i],
      ['heartbeat from a stranger', HEARTBEAT_PROTOCOL, json({ type: 'heartbeat', status: 'idle' }), /ERR_NOT_ENROLLED/]
    ]
    for (const [name, protocol, payload, expected] of cases) {
      const result = await sendRaw(client, coordinator.multiaddr, protocol, payload)
      const text = result instanceof Error ? result.message : result.code
      assert.match(text, expected, name)
    }

    const health = await fetch(new URL('healthz', coordinator.url))
    assert.equal(health.status, 200, 'still serving HTTP')
    assert.equal((await api.nodes.list.query()).length, 0, 'no hostile message wrote a row')
    const agent = await startAgent({ coordinator: coordinator.multiaddr, token })
    await agent.stop()
    assert.equal((await api.nodes.list.query()).length, 1, 'an honest agent still enrolls, using the untouched token')
    assert.equal(coordinator.process.child.exitCode, null, 'coordinator process is alive')
  })
})
