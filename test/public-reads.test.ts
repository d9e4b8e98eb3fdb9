import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { Coordinator } from '@barnraise/coordinator'
import { CoordinatorClient, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { tempDir } from './support/cluster.ts'
import { sessionClient } from './support/session-client.ts'

type Client = ReturnType<typeof sessionClient>

const SECRET_HOST = 'gpu-07.rack3.hilltop.internal'
const DRIVER = '550.54.15'
const AGENT = '9.8.7-secret'

describe('what a public reader learns about the machines', () => {
  let coordinator: Coordinator
  let agentHost: Libp2p
  let hilltop: Client
  let otherLab: Client
  beforeAll(async () => {
    coordinator = await Coordinator.start({ dataDir: await tempDir('public-reads'), httpPort: 0, p2pPort: 0 })
    await sessionClient(coordinator.url).auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', setupCode: coordinator.setupCode! })
    hilltop = sessionClient(coordinator.url)
    await hilltop.auth.signUp.mutate({ email: 'lin@hilltop.test', password: 'lin-password-1', displayName: 'Lin', role: 'lab_admin', organization: 'Hilltop Lab' })
    otherLab = sessionClient(coordinator.url)
    await otherLab.auth.signUp.mutate({ email: 'max@valley.test', password: 'max-password-1', displayName: 'Max', role: 'lab_admin', organization: 'Valley Lab' })
    // A real enrollment over libp2p, as an agent without --name sends it.
    const { token } = await hilltop.labs.createToken.mutate({})
    agentHost = await createAgentHost(await generateKeyPair('Ed25519'))
    const client = new CoordinatorClient(agentHost, parseCoordinatorAddress(coordinator.multiaddrs[0]!))
    await client.enroll({
      type: 'enroll',
      agentVersion: AGENT,
      token,
      hardware: { hostname: SECRET_HOST, platform: 'linux', arch: 'x64', cpuModel: 'AMD EPYC 9654', cpuCores: 96, memoryBytes: 2 ** 40, gpus: [{ name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81_559, driverVersion: DRIVER }] }
    })
  })
  afterAll(async () => {
    await agentHost.stop()
    await coordinator.stop()
  })

  test('strangers and other labs see the node\'s name, lab and hardware class, not its hostname, platform, driver or agent version', async () => {
    for (const [who, reader] of [['a visitor', sessionClient(coordinator.url)], ['another lab\'s admin', otherLab]] as const) {
      const nodes = await reader.nodes.list.query()
      assert.equal(nodes.length, 1, who)
      const node = nodes[0]!
      assert.equal(node.organizationName, 'Hilltop Lab', who)
      assert.equal(node.hardware.cpuCores, 96, who)
      assert.equal(node.hardware.gpus[0]?.name, 'NVIDIA H100 80GB HBM3', who)
      assert.equal(node.agentVersion, null, who)
      const text = JSON.stringify(nodes)
      for (const secret of [SECRET_HOST, 'gpu-07', DRIVER, AGENT, '"platform"', '"arch"']) assert.ok(!text.includes(secret), `${who} reads ${secret}`)
    }
  })

  test('a node an agent enrolled without a name is not named after its hostname', async () => {
    const [node] = await sessionClient(coordinator.url).nodes.list.query()
    assert.match(node!.name, /^node-[A-Za-z0-9]{8}$/)
  })

  test('the node\'s own lab (and an admin) see everything', async () => {
    const [own] = await hilltop.nodes.list.query()
    assert.equal(own!.hardware.hostname, SECRET_HOST)
    assert.equal(own!.hardware.gpus[0]?.driverVersion, DRIVER)
    assert.equal(own!.agentVersion, AGENT)
  })
})
