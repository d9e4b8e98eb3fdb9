// A real agent process that trains like any other and then lies about what it trained: the
// attacks of issue 12 (sign flip, all zeros, scaled, a replay of its first delta) as a node would
// mount them, through the agent's own session, work loop and TypeScript executor. `slow` is no
// attack: an honest node four times slower than its hardware (a laptop beside a GPU). Test
// support only; never shipped.
// `--claim` signs another executor than the one that trained (`none`: the v1 form, no executor),
// so its doubled units are judged as from another class of device.
//   node test/support/hostile-agent.ts --attack flip|zero|scale|replay|slow --coordinator MA --token T --data-dir D [--name N] [--claim torch-cpu|torch-cuda|none]
import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { loadOrCreatePeerKey } from '@barnraise/protocol'
import { createAgentHost } from '../../node-agent/src/host.ts'
import { parseCoordinatorAddress } from '../../node-agent/src/coordinator-client.ts'
import { runSession } from '../../node-agent/src/session.ts'
import { TypeScriptExecutor } from '../../node-agent/src/executors/typescript-executor.ts'
import type { Executor, TrainRequest, TrainResult } from '../../node-agent/src/executors/executor.ts'
import type { ExecutorKind } from '@barnraise/protocol'

const { values } = parseArgs({
  options: {
    attack: { type: 'string' },
    coordinator: { type: 'string' },
    token: { type: 'string' },
    'data-dir': { type: 'string' },
    name: { type: 'string' },
    claim: { type: 'string' }
  }
})
const attack = values.attack
if (attack !== 'flip' && attack !== 'zero' && attack !== 'scale' && attack !== 'replay' && attack !== 'slow') throw new Error('--attack flip|zero|scale|replay|slow')
const claim = values.claim
if (claim !== undefined && claim !== 'torch-cpu' && claim !== 'torch-cuda' && claim !== 'none') throw new Error('--claim torch-cpu|torch-cuda|none')
/** What the report signs as its executor: the trainer's, another, or (none) nothing, as agents before executors were named did. */
const claimed = (trained: ExecutorKind): ExecutorKind => claim === undefined ? trained : claim === 'none' ? undefined as unknown as ExecutorKind : claim

/** The replayer's first (honest) delta, sent again every later round. */
let firstDelta: Float32Array | null = null

/** θ_local that makes the report's Δ = θ − θ_local what the attack sends. */
function lie (base: Float32Array, honest: Float32Array): Float32Array {
  if (attack === 'slow') return honest
  if (attack === 'replay') {
    if (firstDelta === null) {
      firstDelta = base.map((x, i) => x - honest[i]!)
      return honest
    }
    return base.map((x, i) => x - firstDelta![i]!)
  }
  const out = new Float32Array(base.length)
  for (let i = 0; i < base.length; i++) {
    const delta = base[i]! - honest[i]!
    out[i] = attack === 'flip' ? base[i]! + delta : attack === 'scale' ? base[i]! - 100 * delta : base[i]!
  }
  return out
}

const inner = new TypeScriptExecutor({ threads: 1 })
const executor: Executor = {
  name: `hostile (${attack})`,
  kind: inner.kind,
  async train (request: TrainRequest): Promise<TrainResult> {
    const result = await inner.train(request)
    if (attack === 'slow') {
      // Three times the work's time again, and says so: its compute seconds are four times the trainer's.
      await new Promise((resolve) => setTimeout(resolve, 3000 * result.computeSeconds))
      return { ...result, computeSeconds: 4 * result.computeSeconds, executor: claimed(result.executor) }
    }
    return { ...result, params: lie(request.base, result.params), executor: claimed(result.executor) }
  },
  close: async () => { await inner.close?.() }
}

const dataDir = values['data-dir']!
const { key } = await loadOrCreatePeerKey(join(dataDir, 'peer.key'))
const libp2p = await createAgentHost(key)
const controller = new AbortController()
process.on('SIGTERM', () => { controller.abort() })
process.on('SIGINT', () => { controller.abort() })
const say = (line: string): void => { process.stdout.write(line + '\n') }
say(`agent: peer id ${libp2p.peerId.toString()} (hostile: ${attack})`)
try {
  await runSession({
    libp2p,
    coordinator: parseCoordinatorAddress(values.coordinator!),
    dataDir,
    hardware: { hostname: `hostile-${attack}`, platform: process.platform, arch: process.arch, cpuModel: 'hostile', cpuCores: 1, memoryBytes: 2 ** 30, gpus: [] },
    ...(values.token !== undefined ? { token: values.token } : {}),
    ...(values.name !== undefined ? { name: values.name } : {}),
    heartbeatIntervalMs: 1000,
    work: { executor, key },
    signal: controller.signal,
    verbose: true,
    say
  })
} finally {
  await executor.close?.()
  await libp2p.stop()
}
