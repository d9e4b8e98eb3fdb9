import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { canonicalReportMetadata, encodePseudoGradient, parseReportMetadata } from '@barnraise/protocol'
import type { CodecName, LedgerEntry, ReportMetadata } from '@barnraise/protocol'
import { CoordinatorClient, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { countParams } from '@barnraise/trainer'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { startShapedLink } from './support/shaped-link.ts'
import type { ShapedLink } from './support/shaped-link.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import { waitForUnit } from './support/work-units.ts'
import type { ApiCheckpoint } from './support/runs.ts'

// A run that lets slow links use a smaller codec, between real processes: one agent on
// loopback, one behind a 1 Mbit/s link (a TCP proxy that paces every byte). Nobody is measured
// in round 1, so both send int8; the coordinator times each report's upload, and from round 2
// the slow node's units come in topk while the fast node keeps int8. Both fold into the same
// rounds, whose means then go out as int8 aggregates the nodes rebuild their bases from.
test('a run allowing int8 and topk moves the node on a slow link to topk, keeps the fast one on int8, and folds both', async () => {
  const coordinator = await startCoordinator()
  let fast: RunningAgent | undefined
  let slow: RunningAgent | undefined
  let link: ShapedLink | undefined
  try {
    const m = /^\/ip4\/127\.0\.0\.1\/tcp\/(\d+)\/p2p\/(\S+)$/.exec(coordinator.multiaddr)
    assert.ok(m !== null, coordinator.multiaddr)
    link = await startShapedLink(Number(m[1]), { bitsPerSecond: 1e6, latencyMs: 10 })
    const token = await coordinator.createToken('Mixed Links Lab', { uses: 2 })
    fast = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'fibre' })
    slow = await startAgent({ coordinator: `/ip4/127.0.0.1/tcp/${link.port}/p2p/${m[2]}`, token, name: 'rural' })
    const spec = tinyRunSpec({ codec: 'int8', codecs: ['int8', 'topk'], minNodes: 2, rounds: 4, recipe: { innerSteps: 24, batchSize: 4, seqLen: 32, innerLr: 0.003, warmupSteps: 2 } })
    const runId = await createRunViaCli(coordinator.dataDir, spec)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000, { coordinator: coordinator.process.output, fast: fast.output, slow: slow.output })

    const ledger = await getJson<LedgerEntry[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    assert.ok(ledger.every((e) => e.outcome === 'accepted'), JSON.stringify(ledger.map((e) => [e.round, e.peerId, e.outcome, e.reason])))
    const codecOf = (peerId: string, round: number): string | undefined => {
      const row = ledger.find((e) => e.peerId === peerId && e.round === round)
      return row?.metadata == null ? undefined : parseReportMetadata(row.metadata)?.codec
    }
    assert.equal(codecOf(fast.peerId, 1), 'int8')
    assert.equal(codecOf(slow.peerId, 1), 'int8', 'unmeasured, the slow node starts on the run\'s codec')
    for (let round = 2; round <= 4; round++) assert.equal(codecOf(slow.peerId, round), 'topk', `round ${round}: the slow node's report`)
    // The fast node's choice follows its own measured uploads (a busy coordinator can time one
    // slowly); on loopback it keeps int8 in at least one round beside the slow node's topk.
    const mixed = [2, 3, 4].filter((round) => codecOf(fast!.peerId, round) === 'int8')
    assert.ok(mixed.length > 0, `the fast node sent ${[2, 3, 4].map((r) => codecOf(fast!.peerId, r)).join(', ')}`)

    // A mixed round goes out as its int8 mean: the next round's units rebuild their base from it.
    assert.match(fast.output(), /base rebuilt from the round's int8 mean/)
    assert.match(slow.output(), /\(\d+ KiB topk[,)]/)
    const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
    assert.equal(checkpoints.length, 5)
    assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss!, `the loss fell: ${checkpoints.map((c) => c.valLoss).join(', ')}`)
    assert.ok(link.bytes.up > 100_000, `the slow node's reports crossed its link (${link.bytes.up} bytes up)`)
  } finally {
    await fast?.stop()
    await slow?.stop()
    await link?.close()
    await coordinator.stop()
  }
})

// The codec is the coordinator's choice, not the node's: within what the run allows, a report in
// another codec than its unit was handed out in is refused at admission, before its payload.
test('a report in a codec the run allows but its unit was not given is refused at admission, with the reason, and spends the unit', async () => {
  const coordinator = await startCoordinator()
  const key = await generateKeyPair('Ed25519')
  const libp2p = await createAgentHost(key)
  try {
    const client = new CoordinatorClient(libp2p, parseCoordinatorAddress(coordinator.multiaddr))
    const hardware = { hostname: 'picky', platform: 'linux', arch: 'x64', cpuModel: 'picky', cpuCores: 1, memoryBytes: 1, gpus: [] }
    await client.enroll({ type: 'enroll', agentVersion: '0', hardware, token: await coordinator.createToken('Picky Lab') })
    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ codec: 'fp32', codecs: ['fp32', 'topk'], rounds: 1 }))
    const unit = await waitForUnit(client)
    assert.ok(unit !== undefined, 'a unit came')
    assert.equal(unit.codec, 'fp32', 'an unmeasured node is handed the run\'s own codec')
    const delta = new Float32Array(countParams(unit.modelConfig)).fill(1e-6)
    const send = async (codec: CodecName) => {
      const payload = encodePseudoGradient(codec, delta)
      const metadata: ReportMetadata = {
        runId, round: unit!.round, assignmentId: unit!.assignmentId, peerId: libp2p.peerId.toString(), tokens: 100, computeSeconds: 1,
        lossCurve: [5], codec, payloadBytes: payload.byteLength, payloadSha256: createHash('sha256').update(payload).digest('hex')
      }
      const signature = Buffer.from(await key.sign(canonicalReportMetadata(metadata))).toString('base64')
      return await client.sendReport({ type: 'report', metadata, signature }, payload)
    }
    const notGiven = await send('topk')
    assert.deepEqual(notGiven.ok ? null : [notGiven.code, notGiven.message], ['ERR_WRONG_SHAPE', 'this unit was handed out in codec fp32, not topk'])
    const refusedAlready = await send('fp32')
    // A refusal at admission spends the unit: the node cannot try codecs until one passes.
    assert.equal(refusedAlready.ok ? null : refusedAlready.code, 'ERR_DUPLICATE')
    const ledger = await getJson<LedgerEntry[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    assert.deepEqual(ledger.map((e) => [e.outcome, e.reason?.split(':')[0]]), [['refused', 'ERR_WRONG_SHAPE'], ['refused', 'ERR_DUPLICATE']])
  } finally {
    await libp2p.stop()
    await coordinator.stop()
  }
})
