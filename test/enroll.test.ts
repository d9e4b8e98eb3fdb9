import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startAgent, startCoordinator, tempDir } from './support/cluster.ts'
import type { RunningCoordinator } from './support/cluster.ts'
import { spawnCli } from './support/processes.ts'
import { apiClient } from './support/api-client.ts'

async function until<T> (fn: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

describe('enrollment between real processes', () => {
  let coordinator: RunningCoordinator
  beforeAll(async () => { coordinator = await startCoordinator() })
  afterAll(async () => { await coordinator.stop() })

  test('healthz answers', async () => {
    const res = await fetch(new URL('healthz', coordinator.url))
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { ok: true })
  })

  test('an agent enrolls with a token and the API shows it with its hardware; a restart keeps its identity', async () => {
    const api = apiClient(coordinator.url)
    const token = await coordinator.createToken('Enroll Lab')
    const agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'worker-1' })
    try {
      const node = await until(async () => (await api.nodes.list.query()).find((n) => n.peerId === agent.peerId && n.online), 'node online')
      assert.equal(node.organizationName, 'Enroll Lab')
      assert.equal(node.name, 'worker-1')
      assert.equal(node.id, agent.nodeId)
      assert.ok(node.hardware.cpuCores >= 1)
      assert.ok(node.hardware.memoryBytes > 0)
      assert.ok(node.hardware.cpuModel.length > 0)
      assert.ok(Array.isArray(node.hardware.gpus))
    } finally {
      await agent.stop()
    }
    await until(async () => (await api.nodes.list.query()).find((n) => n.peerId === agent.peerId && !n.online), 'node offline')

    // Restart from the same data dir with no token: same key, same row.
    const again = await startAgent({ coordinator: coordinator.multiaddr, dataDir: agent.dataDir })
    try {
      assert.equal(again.peerId, agent.peerId)
      assert.equal(again.nodeId, agent.nodeId)
      assert.match(again.output(), /existing identity/)
      assert.match(again.output(), /re-joined/)
      const nodes = (await api.nodes.list.query()).filter((n) => n.peerId === agent.peerId)
      assert.equal(nodes.length, 1, 'no second row for the same peer')
    } finally {
      await again.stop()
    }
  })

  test('a bad or used-up token is refused with a clear message and writes no row', async () => {
    const api = apiClient(coordinator.url)
    const before = (await api.nodes.list.query()).length
    const token = await coordinator.createToken('Once Lab', { uses: 1 })
    const first = await startAgent({ coordinator: coordinator.multiaddr, token })
    await first.stop()

    for (const bad of ['brt_not-a-real-token', token]) {
      const dataDir = await tempDir('bad-agent')
      const proc = spawnCli('node-agent/src/cli.ts', ['join', '--coordinator', coordinator.multiaddr, '--token', bad, '--data-dir', dataDir])
      const code = await proc.exited
      assert.equal(code, 3, proc.output())
      assert.match(proc.output(), /enrollment refused \(ERR_INVALID_TOKEN\): enrollment token is unknown, used up, expired or revoked/)
    }
    assert.equal((await api.nodes.list.query()).length, before + 1, 'only the first agent got a row')
  })

  test('an agent enrolls with its token read from a file (--token-file), with no warning for a private file', async () => {
    const api = apiClient(coordinator.url)
    const token = await coordinator.createToken('File Lab')
    const file = join(await tempDir('token-file'), 'token')
    await writeFile(file, `${token}\n`, { mode: 0o600 })
    const agent = await startAgent({ coordinator: coordinator.multiaddr, args: ['--token-file', file] })
    try {
      const node = await until(async () => (await api.nodes.list.query()).find((n) => n.peerId === agent.peerId), 'node listed')
      assert.equal(node.organizationName, 'File Lab')
      assert.doesNotMatch(agent.output(), /open to other users/)
    } finally {
      await agent.stop()
    }
  })

  test('join without a token on a fresh machine explains what is missing', async () => {
    const proc = spawnCli('node-agent/src/cli.ts', ['join', '--coordinator', coordinator.multiaddr, '--data-dir', await tempDir('no-token')])
    assert.equal(await proc.exited, 2)
    assert.match(proc.output(), /--token <token> is required for the first join/)
  })

  test('join with a heartbeat slower than the coordinator\'s liveness window is clamped to 20 s, saying so', async () => {
    const proc = spawnCli('node-agent/src/cli.ts', ['join', '--coordinator', coordinator.multiaddr, '--token', 'unused', '--heartbeat-interval', '60', '--data-dir', await tempDir('slow-heartbeat')])
    // It goes on to join (and is turned away for its made-up token).
    assert.equal(await proc.exited, 3, proc.output())
    assert.match(proc.output(), /--heartbeat-interval 60 is over 20 s; using 20 \(the coordinator hands work only to nodes it heard from in the last 30 s\)/)
  })
})
