import { test } from 'vitest'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import pg from 'pg'
import { CoordinatorClient, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { createRunViaCli, tinyRunSpec, waitForRun } from './support/runs.ts'
import { createTestDatabase } from './support/postgres.ts'

// A round waits for every unit it handed out until its deadline. A node that only keeps a
// connection open (enrolled once, then no enrollment, heartbeat or work request on it) is handed
// no unit at all; one that heartbeats but never reports its units sits out the rounds after each
// unit it let expire, one after the first, more after each more; a real agent gets a unit every round.
test('a node that only holds its connection gets no units, and one that lets its units expire sits out the next rounds', async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url }
  const coordinator = await startCoordinator({ env, args: ['--metrics'] })
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  let agent: RunningAgent | undefined
  const hosts: Array<Awaited<ReturnType<typeof createAgentHost>>> = []
  let beating = true
  let heartbeats: Promise<void> | undefined
  try {
    const address = parseCoordinatorAddress(coordinator.multiaddr)
    const hardware = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'x', cpuCores: 1, memoryBytes: 2 ** 30, gpus: [] }
    const peer = async (lab: string, name: string): Promise<{ client: CoordinatorClient, host: typeof hosts[number] }> => {
      const host = await createAgentHost(await generateKeyPair('Ed25519'))
      hosts.push(host)
      const client = new CoordinatorClient(host, address)
      await client.enroll({ type: 'enroll', agentVersion: '0', hardware, token: await coordinator.createToken(lab), name })
      return { client, host }
    }
    const online = async (): Promise<number> => Number(/^barnraise_nodes_online (\d+)/m.exec(await (await fetch(new URL('metrics', coordinator.url))).text())?.[1])
    // Enrolled, gone, and back with a bare connection: it never says another word.
    const silent = await peer('Silent Lab', 'silent')
    await silent.host.hangUp(address)
    for (let i = 0; i < 200 && await online() !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(await online(), 0, 'the coordinator saw it leave')
    await silent.host.dial(address)
    agent = await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Working Lab'), name: 'worker' })
    // Says it is alive every second, and never reports a unit.
    const { client: shirker } = await peer('Shirking Lab', 'shirker')
    await shirker.heartbeat({ type: 'heartbeat', status: 'idle' })
    heartbeats = (async () => {
      while (beating) {
        await shirker.heartbeat({ type: 'heartbeat', status: 'training' }).catch(() => {})
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
    })()

    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ minNodes: 1, rounds: 3, roundDeadlineSeconds: 5 }), env)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', undefined, { coordinator: coordinator.process.output, agent: agent.output })

    const units = await db.query<{ name: string, number: number, status: string }>(
      `select n.name, r.number, a.status from assignments a join nodes n on n.id = a.node_id join rounds r on r.id = a.round_id
       where a.run_id = $1 order by r.number, n.name`, [runId])
    const of = (name: string): Array<[number, string]> => units.rows.filter((u) => u.name === name).map((u) => [u.number, u.status])
    assert.deepEqual(of('worker'), [[1, 'accepted'], [2, 'accepted'], [3, 'accepted']])
    assert.deepEqual(of('silent'), [], 'a connection alone earns no unit')
    assert.ok(silent.host.getConnections().some((c) => c.status === 'open'), 'it stayed connected throughout')
    // Round 1's unit expired at the deadline: round 2 goes on without it, round 3 tries it again.
    assert.deepEqual(of('shirker'), [[1, 'expired'], [3, 'expired']])
    const rounds = await db.query<{ number: number, close_reason: string }>('select number, close_reason from rounds where run_id = $1 order by number', [runId])
    assert.deepEqual(rounds.rows.map((r) => [r.number, r.close_reason]), [
      [1, 'deadline: 1 of 2 units reported'],
      [2, 'all work units reported'],
      [3, 'deadline: 1 of 2 units reported']
    ])
  } finally {
    beating = false
    await heartbeats
    for (const host of hosts) await host.stop()
    await agent?.stop()
    await db.end()
    await coordinator.stop()
    await database.drop()
  }
})
