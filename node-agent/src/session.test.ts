import { test, onTestFinished } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { ENROLL_PROTOCOL, HEARTBEAT_PROTOCOL, JsonStream, ProtocolError, WORK_PROTOCOL, enrollRequestSchema, heartbeatRequestSchema, workRequestSchema } from '@barnraise/protocol'
import type { z } from 'zod'
import { presetConfig } from '@barnraise/trainer'
import { createAgentHost } from './host.ts'
import { RefusedError, isRetryable, parseCoordinatorAddress } from './coordinator-client.ts'
import { plainSay, runSession } from './session.ts'
import { syntheticUnit } from './executors/synthetic-unit.ts'
import type { Executor } from './executors/executor.ts'

type WorkRequest = z.infer<typeof workRequestSchema>

/** Everything a terminal would act on: C0 controls but line feed and tab, DEL, C1 controls. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/

test('plainSay strips escape sequences and other controls, keeping line feeds and tabs', () => {
  const lines: string[] = []
  const say = plainSay((line) => { lines.push(line) })
  // The review's payload: an OSC 52 clipboard write, a screen clear, a fake window title; then a C1 CSI and a bidi override.
  say('\u001b]52;c;ZWNobyBwd25lZA==\u0007\u001b[2J\u001b[H\u001b]0;fake title\u0007agent: all good \u009b31m\u202Egnp.exe')
  say('agent: line one\n\tline two\r\n')
  assert.ok(!CONTROL.test(lines[0]!), JSON.stringify(lines[0]))
  assert.ok(!lines[0]!.includes('\u202E'))
  assert.match(lines[0]!, /agent: all good/)
  assert.equal(lines[1], 'agent: line one\n\tline two\n')
})

test('a malformed reply is retryable; a refusal is not', () => {
  assert.equal(isRetryable(new ProtocolError('ERR_MALFORMED_MESSAGE', 'unit.codec: Invalid option')), true)
  assert.equal(isRetryable(new ProtocolError('ERR_TIMEOUT', 'slow')), true)
  assert.equal(isRetryable(new RefusedError('ERR_NODE_REVOKED', 'revoked')), false)
})

/**
 * A coordinator that answers enroll and heartbeat, and work with `replies` in turn (then "wait");
 * its enrollment answer lists `workFields` (null: none, as an older coordinator's).
 */
async function fakeCoordinator (organizationName: string, replies: unknown[], workFields: string[] | null = ['executor']): Promise<{ host: Libp2p, address: string, work: WorkRequest[], enrolls: number }> {
  const host = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
  const state = { host, address: '', work: [] as WorkRequest[], enrolls: 0 }
  const answer = async (stream: Parameters<Parameters<Libp2p['handle']>[1]>[0], reply: (messages: JsonStream) => Promise<unknown>): Promise<void> => {
    const messages = new JsonStream(stream)
    try {
      await messages.write(await reply(messages))
    } finally {
      await messages.close()
    }
  }
  await host.handle(ENROLL_PROTOCOL, async (stream) => {
    await answer(stream, async (m) => {
      await m.read(enrollRequestSchema)
      state.enrolls++
      return { ok: true, nodeId: randomUUID(), organizationId: randomUUID(), organizationName, rejoined: state.enrolls > 1, ...(workFields !== null ? { workFields } : {}) }
    })
  })
  await host.handle(HEARTBEAT_PROTOCOL, async (stream) => {
    await answer(stream, async (m) => { await m.read(heartbeatRequestSchema); return { ok: true, serverTime: new Date().toISOString() } })
  })
  await host.handle(WORK_PROTOCOL, async (stream) => {
    await answer(stream, async (m) => {
      state.work.push(await m.read(workRequestSchema))
      return replies.shift() ?? { kind: 'wait', retryAfterMs: 60_000, reason: 'no run needs this node \u001b[2J\u001b]0;owned\u0007' }
    })
  })
  state.address = host.getMultiaddrs()[0]!.toString()
  return state
}

async function until (what: string, condition: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A training session against `coordinator`, stopped when the test ends; `ended` says whether it returned or threw. */
async function startSession (coordinator: Awaited<ReturnType<typeof fakeCoordinator>>): Promise<{ lines: string[], session: Promise<void>, controller: AbortController, state: { ended: unknown } }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'barnraise-session-'))
  const agent = await createAgentHost(await generateKeyPair('Ed25519'))
  const controller = new AbortController()
  onTestFinished(async () => {
    controller.abort()
    await agent.stop()
    await coordinator.host.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const executor: Executor = { name: 'no trainer', kind: 'typescript', train: async () => { throw new Error('nothing should train') } }
  const lines: string[] = []
  const session = runSession({
    libp2p: agent,
    coordinator: parseCoordinatorAddress(coordinator.address),
    dataDir,
    hardware: { hostname: 'test', platform: 'linux', arch: 'x64', cpuModel: 'test', cpuCores: 1, memoryBytes: 2 ** 30, gpus: [] },
    token: 'token',
    heartbeatIntervalMs: 60_000,
    signal: controller.signal,
    say: (line) => { lines.push(line) },
    work: { executor, key: await generateKeyPair('Ed25519') }
  })
  const state = { ended: 'running' as unknown }
  session.then(() => { state.ended = 'returned' }, (err: unknown) => { state.ended = err })
  return { lines, session, controller, state }
}

test('a coordinator that lists no work-request fields (an older one, which refuses unknown keys) is sent work requests without the executor', async () => {
  const coordinator = await fakeCoordinator('Older Lab', [], null)
  const { session, controller, state } = await startSession(coordinator)
  await until('a work request', () => coordinator.work.length >= 1 || state.ended !== 'running')
  assert.equal(state.ended, 'running', `the session ended: ${String(state.ended)}`)
  assert.equal(coordinator.work[0]!.executor, undefined)
  assert.ok(!('executor' in coordinator.work[0]!))
  controller.abort()
  await session
})

test('a work reply the agent cannot read is logged and retried with backoff, and its unit handed back; coordinator text reaches say as plain text', async () => {
  // A newer coordinator's codec: the unit does not parse (work.ts: codec is an enum).
  const unit = { ...syntheticUnit(presetConfig('tiny'), { innerSteps: 1, batchSize: 1, seqLen: 8 }), codec: 'zstd-topk' }
  const coordinator = await fakeCoordinator('Lab\u001b]52;c;ZWNobyBwd25lZA==\u0007\u001b[2J', [{ kind: 'unit', unit }])
  const { lines, session, controller, state } = await startSession(coordinator)

  await until('the second work request', () => coordinator.work.length >= 2 || state.ended !== 'running')
  assert.equal(state.ended, 'running', `the session ended: ${String(state.ended)}`)
  // The unit went back, with a reason the organizer can act on.
  assert.equal(coordinator.work[0]!.decline, undefined)
  assert.equal(coordinator.work[1]!.decline?.assignmentId, unit.assignmentId)
  assert.equal(coordinator.work[1]!.decline?.code, 'ERR_BAD_INPUT')
  // Every request names the executor this node trains with: the coordinator picks scorers by it.
  assert.deepEqual(coordinator.work.map((w) => w.executor), coordinator.work.map(() => 'typescript'))
  assert.match(coordinator.work[1]!.decline?.message ?? '', /cannot read this work unit \(unit\.codec: .*\); the coordinator may be newer/)
  await until('the wait line', () => lines.some((l) => l.includes('waiting for work')))
  controller.abort()
  await session
  assert.equal(coordinator.enrolls, 2)
  assert.ok(lines.some((l) => /the coordinator sent a reply this agent cannot read \(the work reply is not one this agent can read \(unit\.codec: .*\); the unit will be handed back\).*retrying in \d/.test(l)), lines.join('\n'))
  // The organization's name and the wait reason arrived with escape sequences; none reached say.
  for (const line of lines) assert.ok(!CONTROL.test(line), JSON.stringify(line))
  assert.ok(lines.some((l) => l.includes('of Lab ]52;c;')), lines.join('\n'))
})

test('replies the agent cannot read, one after another, back off longer each time although enrolling succeeds', async () => {
  const unreadable = { kind: 'wait', retryAfterMs: -1, reason: 'a reply no agent accepts' }
  const coordinator = await fakeCoordinator('Lab', [unreadable, unreadable, unreadable])
  const { lines, session, controller, state } = await startSession(coordinator)
  await until('the fourth work request', () => coordinator.work.length >= 4 || state.ended !== 'running')
  assert.equal(state.ended, 'running', `the session ended: ${String(state.ended)}`)
  controller.abort()
  await session
  const delays = lines.flatMap((l) => /cannot read \(the work reply is not one this agent can read \(retryAfterMs: .*retrying in ([\d.]+) s/.exec(l)?.[1] ?? []).map(Number)
  assert.equal(delays.length, 3, lines.join('\n'))
  // backoffDelay: 0.25–0.5 s, then 0.5–1 s, then 1–2 s.
  assert.ok(delays[0]! <= 0.5 && delays[2]! >= 1, delays.join(', '))
})
