import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { Coordinator } from '@barnraise/coordinator'
import { BLOB_BLOCK_BYTES, JsonStream, SWARM_PROTOCOL, swarmResponseSchema } from '@barnraise/protocol'
import type { PeerBlockResponse } from '@barnraise/protocol'
import { CoordinatorClient, PeerExchange, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { tempDir } from './support/cluster.ts'
import { askHave } from './support/peer-have.ts'

// A holder asks the coordinator whether each asker may have a blob (`swarm-member`), from its own
// peer id: each question counts against its own stream allowance there. A stranger with a new
// identity per request once made it ask once per request, and past the coordinator's rate the
// agent's own heartbeats were reset. The questions are budgeted now (peer-permissions.ts).
test('strangers with a new identity per request cost the holder a budget of questions to the coordinator, not one each; its own requests keep going', async () => {
  const dir = await tempDir('member-budget')
  // The coordinator's per-peer stream rate scaled down (100 a second after 600 by default), so a
  // few seconds of strangers exhaust it as minutes would at full scale.
  const coordinator = await Coordinator.start({ dataDir: dir, httpPort: 0, p2pPort: 0, peerLimits: { inboundConnectionThreshold: 1000, streamBurst: 30, streamsPerSecond: 6 } })
  const hosts: Libp2p[] = []
  let peers: PeerExchange | undefined
  try {
    const db = coordinator.database.db
    const blob = randomBytes(2 * BLOB_BLOCK_BYTES)
    const sha = createHash('sha256').update(blob).digest('hex')
    await coordinator.blobs.put(blob)
    await db.insertInto('blobs').values({ sha256: sha, size: blob.byteLength, kind: 'shard', meta: '{}' }).execute()
    const org = await db.insertInto('organizations').values({ name: 'Budget Lab' }).returning('id').executeTakeFirstOrThrow()
    const run = await db.insertInto('runs').values({ name: 'r', spec: '{}', failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()
    const round = await db.insertInto('rounds').values({ run_id: run.id, number: 1, status: 'open', base_checkpoint: '0'.repeat(64), deadline_at: new Date(Date.now() + 600_000) }).returning('id').executeTakeFirstOrThrow()
    const enrol = async (host: Libp2p, name: string): Promise<void> => {
      const node = await db.insertInto('nodes').values({ peer_id: host.peerId.toString(), organization_id: org.id, name, hardware: '{}', agent_version: '0', enrolled_with_token_id: null, first_seen_at: new Date(), last_seen_at: new Date() }).returning('id').executeTakeFirstOrThrow()
      await db.insertInto('assignments').values({ run_id: run.id, round_id: round.id, node_id: node.id, ranges: JSON.stringify([{ shard: sha, start: 0, end: 10 }]), tokens: 10, status: 'assigned' }).execute()
    }
    const address = parseCoordinatorAddress(coordinator.multiaddrs[0]!)
    const holder = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
    hosts.push(holder)
    await enrol(holder, 'holder')
    peers = await PeerExchange.start(holder, address)
    const file = join(dir, sha)
    await writeFile(file, blob)
    await peers.offer(sha, file)
    const client = new CoordinatorClient(holder, address)

    const have = async (asker: Libp2p): Promise<PeerBlockResponse> => await askHave(asker, holder.getMultiaddrs(), sha)
    // The holder's own traffic: a heartbeat and a swarm request every second.
    const own = async (ms: number): Promise<{ ok: number, failed: number }> => {
      const out = { ok: 0, failed: 0 }
      const end = Date.now() + ms
      while (Date.now() < end) {
        try {
          await client.heartbeat({ type: 'heartbeat', status: 'idle' })
          const stream = await holder.dialProtocol(address, SWARM_PROTOCOL)
          const messages = new JsonStream(stream)
          await messages.write({ type: 'swarm-leave', sha256: sha })
          await messages.read(swarmResponseSchema, 10_000)
          await messages.close()
          out.ok++
        } catch (err) {
          if (err instanceof RefusedError) out.ok++
          else out.failed++
        }
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
      return out
    }

    let attacking = true
    const replies = new Map<string, number>()
    const stranger = async (): Promise<void> => {
      while (attacking) {
        const h = await createAgentHost(await generateKeyPair('Ed25519'))
        try {
          const reply = await have(h)
          const code = reply.ok ? 'ok' : reply.code
          replies.set(code, (replies.get(code) ?? 0) + 1)
        } catch {} finally { await h.stop() }
      }
    }
    const started = Date.now()
    const strangers = Array.from({ length: 8 }, async () => { await stranger() })
    const during = await own(8_000)
    attacking = false
    await Promise.all(strangers)
    const seconds = (Date.now() - started) / 1000
    const requests = [...replies.values()].reduce((a, b) => a + b, 0)
    const questions = peers.membershipQuestions
    assert.equal(replies.get('ok'), undefined, 'no stranger was served')
    assert.ok(requests >= 60, `the strangers asked ${requests} times`)
    // The default budget: 24 at once from one address, then 2 a second.
    assert.ok(questions <= 24 + 2 * seconds + 2, `${questions} questions to the coordinator for ${requests} stranger requests in ${seconds.toFixed(1)} s`)
    assert.deepEqual(during, { ok: during.ok, failed: 0 }, 'the holder\'s own heartbeats and swarm requests all went through')

    // A member from the same address (loopback) is served once the strangers stop: busy, then
    // asked about within its address's refill.
    const member = await createAgentHost(await generateKeyPair('Ed25519'))
    hosts.push(member)
    await enrol(member, 'member')
    let answer: PeerBlockResponse | undefined
    for (let attempt = 0; attempt < 20; attempt++) {
      // The holder's inbound connection limit per address can still reset a dial from loopback,
      // where the strangers came from: a reset is retried as busy is.
      answer = await have(member).catch(() => undefined)
      if (answer !== undefined && (answer.ok || answer.code !== 'ERR_BUSY')) break
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    assert.equal(answer?.ok, true, `the member was served: ${JSON.stringify(answer)}`)
  } finally {
    await peers?.stop()
    for (const h of hosts) await h.stop()
    await coordinator.stop()
  }
})
