// The errors a newcomer meets first: each says what is wrong and what to do, and the ones no
// retry can fix stop the process instead of retrying forever.
import { afterAll, beforeAll, describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { startAgent, startCoordinator, tempDir } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { runCli, spawnCli } from './support/processes.ts'

const COORDINATOR = 'coordinator/src/cli.ts'
const AGENT = 'node-agent/src/cli.ts'

/** A loopback port nothing listens on (bound, then released). */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
}

describe('errors a newcomer meets', () => {
  let coordinator: RunningCoordinator
  let agent: RunningAgent | undefined
  beforeAll(async () => { coordinator = await startCoordinator() })
  afterAll(async () => { await agent?.stop(); await coordinator.stop() })

  test('an address with the wrong peer id stops the agent with what to do, instead of retrying forever', async () => {
    const wrong = coordinator.multiaddr.replace(/\/p2p\/\S+$/, '/p2p/12D3KooWGRUVh7qxGmX3wzLYYj9sKDmCsBYxQgnrPDtN4Xy5ZbzL')
    const token = await coordinator.createToken('Peer Lab')
    const proc = spawnCli(AGENT, ['join', '--coordinator', wrong, '--token', token, '--data-dir', await tempDir('wrong-peer'), '--no-train'])
    const timer = setTimeout(() => { void proc.stop() }, 30_000)
    const code = await proc.exited
    clearTimeout(timer)
    assert.equal(code, 3, proc.output())
    const realPeer = coordinator.multiaddr.match(/\/p2p\/(\S+)$/)![1]!
    assert.match(proc.output(), new RegExp(`the coordinator at /ip4/127\\.0\\.0\\.1/tcp/\\d+ has peer id ${realPeer}, not 12D3KooWGRUVh7qxGmX3wzLYYj9sKDmCsBYxQgnrPDtN4Xy5ZbzL as --coordinator says; copy its address again`))
    assert.doesNotMatch(proc.output(), /retrying/)
  })

  test('two agents on one data directory: the second says so and leaves the first alone', async () => {
    const dataDir = await tempDir('shared-agent')
    agent = await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Shared Lab'), dataDir, args: ['--no-train'] })
    const second = await runCli(AGENT, ['join', '--coordinator', coordinator.multiaddr, '--data-dir', dataDir, '--no-train'])
    assert.equal(second.code, 2)
    assert.match(second.output, new RegExp(`an agent is already running with ${dataDir} \\(pid ${agent.process.child.pid}\\); stop it first, or give this one its own --data-dir`))
    assert.equal(agent.process.child.exitCode, null, 'the first agent still runs')
  })

  test('a --peer-listen the agent cannot use is named, with what to do, and nothing enrolls', async () => {
    const token = await coordinator.createToken('Listen Lab', { uses: 2 })
    const join = async (listen: string): Promise<Awaited<ReturnType<typeof runCli>>> => await runCli(AGENT, ['join', '--coordinator', coordinator.multiaddr, '--token', token, '--data-dir', await tempDir('bad-listen'), '--executor', 'typescript', '--threads', '1', '--peer-listen', listen])
    const udp = await join('/ip4/127.0.0.1/udp/1')
    assert.equal(udp.code, 2, udp.output)
    assert.match(udp.output, /--peer-listen must be a TCP address such as \/ip4\/0\.0\.0\.0\/tcp\/4002/)
    // An address this machine does not have (TEST-NET-1).
    const elsewhere = await join('/ip4/192.0.2.1/tcp/0')
    assert.equal(elsewhere.code, 2, elsewhere.output)
    assert.match(elsewhere.output, /cannot listen on \/ip4\/192\.0\.2\.1\/tcp\/0 for peer exchange .*give --peer-listen another address, or --no-peer-exchange/s)
    for (const r of [udp, elsewhere]) assert.doesNotMatch(r.output, /enrolled as node/)
  })

  test('serve refuses a connection limit that is not a whole number of at least 1, and starts nothing', async () => {
    for (const [flag, value] of [['--max-connections', '0'], ['--connections-per-ip', '2.5'], ['--connections-per-ip', 'many'], ['--max-nodes-per-lab', '0'], ['--max-report-upload-mb', '1.5']]) {
      const bad = await runCli(COORDINATOR, ['serve', '--data-dir', await tempDir('bad-limit'), '--http-port', '0', '--p2p-port', '0', flag!, value!])
      assert.notEqual(bad.code, 0)
      assert.match(bad.output, new RegExp(`${flag} must be a whole number of at least 1`))
      assert.doesNotMatch(bad.output, /coordinator dashboard:/)
    }
  })

  test('ledger verify explains an unreachable coordinator and a malformed run id', async () => {
    const port = await closedPort()
    const unreachable = await runCli(COORDINATOR, ['ledger', 'verify', '--run', '3f2b6c1e-8d7a-4c55-9e61-0b2f4a9c7d13', '--from', `http://127.0.0.1:${port}/`])
    assert.equal(unreachable.code, 2)
    assert.match(unreachable.output, new RegExp(`nothing answers at http://127\\.0\\.0\\.1:${port} \\(connection refused\\); is the coordinator running, and is the address and port right\\?`))
    assert.doesNotMatch(unreachable.output, /fetch failed/)
    const badId = await runCli(COORDINATOR, ['ledger', 'verify', '--run', '3f2b6c1e', '--from', coordinator.url])
    assert.equal(badId.code, 2)
    assert.match(badId.output, /"3f2b6c1e" is not a run id; a run id looks like/)
    const missing = await runCli(COORDINATOR, ['ledger', 'verify', '--run', '3f2b6c1e-8d7a-4c55-9e61-0b2f4a9c7d13', '--from', coordinator.url])
    assert.equal(missing.code, 2)
    assert.match(missing.output, /has no run 3f2b6c1e-8d7a-4c55-9e61-0b2f4a9c7d13/)
  })

  test('a CLI command pointed at a folder with no install says so and creates nothing', async () => {
    const nowhere = join(await tempDir('nowhere'), 'coordinator')
    for (const args of [['token', 'create', '--org', 'Ghost Lab'], ['run', 'list'], ['run', 'pause', '--run', 'abcd1234']]) {
      const result = await runCli(COORDINATOR, [...args, '--data-dir', nowhere], { DATABASE_URL: '' })
      assert.equal(result.code, 2, result.output)
      assert.match(result.output, new RegExp(`no Barnraise install at ${nowhere}: no coordinator runs there and it holds no database`))
      assert.match(result.output, /Start one with `pnpm start`/)
    }
    assert.equal(existsSync(nowhere), false, 'no database (or folder) was created')
  })

  test('token create without --org uses the only organization, and asks when there are several', async () => {
    const alone = await startCoordinator()
    try {
      const none = await runCli(COORDINATOR, ['token', 'create', '--data-dir', alone.dataDir])
      assert.equal(none.code, 2)
      assert.match(none.output, /this install has no organizations yet; name the one the token is for with --org "Your Lab"/)
      await alone.createToken('Only Lab')
      const made = await runCli(COORDINATOR, ['token', 'create', '--data-dir', alone.dataDir])
      assert.equal(made.code, 0, made.output)
      assert.match(made.output, /enrollment token for Only Lab/)
      assert.match(made.output, new RegExp(`pnpm agent join --coordinator ${alone.multiaddr.replace(/[/.]/g, (c) => `\\${c}`)} --token brt_\\S+`))
      await alone.createToken('Second Lab')
      const ambiguous = await runCli(COORDINATOR, ['token', 'create', '--data-dir', alone.dataDir])
      assert.equal(ambiguous.code, 2)
      assert.match(ambiguous.output, /this install has 2 organizations; say which one with --org NAME \("Only Lab", "Second Lab"\)/)
    } finally {
      await alone.stop()
    }
  })
})

// Mistakes in the flags themselves, refused before anything starts: no install or coordinator needed.
describe('flags a CLI refuses', () => {
  test('an unknown flag, a flag without its value or a stray argument is a usage error (exit 2, the command named, where the flags are listed), never a stack trace', async () => {
    const dataDir = await tempDir('bad-flag')
    const cases: Array<[string, string[], RegExp]> = [
      [COORDINATOR, ['serve', '--data-dir', dataDir, '--bogus'], /barnraise-coordinator: serve: Unknown option '--bogus'/],
      [COORDINATOR, ['serve', '--data-dir', dataDir, '--http-port'], /barnraise-coordinator: serve: Option '--http-port <value>' argument missing/],
      [COORDINATOR, ['token', 'create', '--data-dir', dataDir, 'extra'], /barnraise-coordinator: token create: Unexpected argument 'extra'/],
      [COORDINATOR, ['token', 'create', '--data-dir', dataDir, '--expires-in', '-1'], /barnraise-coordinator: token create: Option '--expires-in' argument is ambiguous/],
      [COORDINATOR, ['run', 'list', '--data-dir', dataDir, '--nope'], /barnraise-coordinator: run list: Unknown option '--nope'/],
      [COORDINATOR, ['user', 'create', '--data-dir', dataDir, '--mail', 'a@example.org'], /barnraise-coordinator: user create: Unknown option '--mail'/],
      [COORDINATOR, ['ledger', 'verify', '--run'], /barnraise-coordinator: ledger verify: Option '--run <value>' argument missing/],
      [AGENT, ['join', '--data-dir', dataDir, '--bogus'], /barnraise-agent join: Unknown option '--bogus'/],
      [AGENT, ['info', 'extra'], /barnraise-agent info: Unexpected argument 'extra'/]
    ]
    for (const [cli, args, message] of cases) {
      const result = await runCli(cli, args)
      const what = `${cli} ${args.join(' ')}: ${result.output}`
      assert.equal(result.code, 2, what)
      assert.match(result.output, message, what)
      assert.match(result.output, /see `barnraise-(coordinator|agent) help` for the commands and their flags/, what)
      assert.doesNotMatch(result.output, /TypeError|ERR_PARSE_ARGS|\n\s+at /, what)
    }
    assert.deepEqual(readdirSync(dataDir), [], 'nothing was created')
  })

  test('user create names a missing --email or --name as the flag to add', async () => {
    const dataDir = await tempDir('user-flags')
    const noEmail = await runCli(COORDINATOR, ['user', 'create', '--name', 'Ada', '--password-stdin', '--data-dir', dataDir])
    assert.equal(noEmail.code, 2, noEmail.output)
    assert.match(noEmail.output, /user create: --email E is required/)
    const noName = await runCli(COORDINATOR, ['user', 'create', '--email', 'ada@example.org', '--password-stdin', '--data-dir', dataDir])
    assert.equal(noName.code, 2, noName.output)
    assert.match(noName.output, /user create: --name N is required/)
    assert.doesNotMatch(noName.output, /displayName|expected string/)
  })

  test('agent numbers out of range are refused, not used: info --threads and join --heartbeat-interval', async () => {
    for (const threads of ['abc', '0', '1.5', '100000']) {
      const info = await runCli(AGENT, ['info', '--no-measure', '--json', '--threads', threads])
      assert.equal(info.code, 2, info.output)
      assert.match(info.output, /barnraise-agent info: --threads must be a whole number from 1 to 256/)
      assert.doesNotMatch(info.stdout, /"executors"/)
    }
    // A heartbeat every millisecond would hammer the coordinator back to back.
    for (const seconds of ['0.001', '0.5', 'NaN']) {
      const join = await runCli(AGENT, ['join', '--coordinator', '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGRUVh7qxGmX3wzLYYj9sKDmCsBYxQgnrPDtN4Xy5ZbzL', '--token', 'unused', '--no-train', '--data-dir', await tempDir('fast-heartbeat'), '--heartbeat-interval', seconds])
      assert.equal(join.code, 2, join.output)
      assert.match(join.output, /--heartbeat-interval must be seconds from 1 to 3600/)
    }
  })

  test('shard refuses a flag the chosen way of sharding would silently ignore', async () => {
    const dir = await tempDir('shard-flags')
    const text = join(dir, 'a.txt')
    await writeFile(text, 'In the beginning was the word.\n'.repeat(200))
    const cases: Array<[string[], RegExp]> = [
      [['--base-url', 'https://data.example.org/shards'], /--base-url goes with --tokenizer/],
      [['--field', 'body'], /--field goes with --tokenizer/],
      [['--tokenizer', 'byte', '--validation-fraction', '0.2'], /--validation-fraction is for byte shards/]
    ]
    for (const [flags, message] of cases) {
      const out = join(dir, `out-${flags[0]!.slice(2)}`)
      const result = await runCli(AGENT, ['shard', '--out', out, ...flags, text])
      assert.equal(result.code, 2, result.output)
      assert.match(result.output, message)
      assert.equal(existsSync(out), false, 'no shards were written')
    }
  })

  test('--help names the flags the commands take: token create --json, info --threads and the executor options', async () => {
    const coordinatorHelp = await runCli(COORDINATOR, ['help'])
    assert.equal(coordinatorHelp.code, 0)
    assert.match(coordinatorHelp.stdout, /\n {4}--json +print the token/)
    const agentHelp = await runCli(AGENT, ['help'])
    assert.equal(agentHelp.code, 0)
    assert.match(agentHelp.stdout, /\n {2}info \[--json\] \[--no-measure\] \[--threads N\] \[executor options below\]/)
  })
})
