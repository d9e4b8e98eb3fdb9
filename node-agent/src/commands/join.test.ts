import { test, onTestFinished, vi } from 'vitest'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runJoinCommand } from './join.ts'

const COORDINATOR = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'

function scratch (): string {
  const root = mkdtempSync(join(tmpdir(), 'barnraise-join-'))
  onTestFinished(() => { rmSync(root, { recursive: true, force: true }) })
  return root
}

/** Runs join with `args`, returning its exit code and what it wrote to stderr. */
async function joinWith (args: string[]): Promise<{ code: number, stderr: string }> {
  const written: string[] = []
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => { written.push(String(chunk)); return true })
  try {
    return { code: await runJoinCommand(['--coordinator', COORDINATOR, '--no-train', ...args]), stderr: written.join('') }
  } finally {
    spy.mockRestore()
  }
}

/** A private data directory another (live) process holds, so a join that gets that far stops there. */
function lockedDataDir (): string {
  const dir = join(scratch(), 'agent')
  mkdirSync(dir, { mode: 0o700 })
  writeFileSync(join(dir, 'lock.json'), JSON.stringify({ pid: process.ppid, holder: 'a test', startedAt: new Date().toISOString() }))
  return dir
}

test('--token and --token-file together are refused, saying to give the token one way', async () => {
  const file = join(scratch(), 'token')
  writeFileSync(file, 'brt_x', { mode: 0o600 })
  const { code, stderr } = await joinWith(['--token', 'brt_x', '--token-file', file, '--data-dir', lockedDataDir()])
  assert.equal(code, 2)
  assert.match(stderr, /give the token one way: --token TOKEN or --token-file PATH, not both/)
})

test('a --token-file that cannot be read stops join before it takes the data directory', async () => {
  const { code, stderr } = await joinWith(['--token-file', join(scratch(), 'nope'), '--data-dir', lockedDataDir()])
  assert.equal(code, 2)
  assert.match(stderr, /cannot read --token-file .*nope \(ENOENT\)/)
  assert.doesNotMatch(stderr, /already running/)
})

test('a --token-file others may read is used with one warning; a first join without any token says what it needs', async () => {
  const file = join(scratch(), 'token')
  writeFileSync(file, 'brt_x\n', { mode: 0o644 })
  const used = await joinWith(['--token-file', file, '--data-dir', lockedDataDir()])
  assert.equal(used.code, 2)
  assert.equal(used.stderr.match(/open to other users of this machine \(mode 0644\)/g)?.length, 1, used.stderr)
  assert.match(used.stderr, /an agent is already running with/, 'it went on to the data directory')
  const none = await joinWith(['--data-dir', join(scratch(), 'fresh')])
  assert.equal(none.code, 2)
  assert.match(none.stderr, /--token <token> is required for the first join \(or --token-file <path>/)
})

test('--max-gpu-memory with an executor that cannot be on CUDA is a usage error naming both flags; a bad size names its flag', async () => {
  const dir = join(scratch(), 'agent')
  const typescript = await joinWith(['--token', 'brt_x', '--data-dir', dir, '--executor', 'typescript', '--max-gpu-memory', '8GiB'])
  assert.equal(typescript.code, 2)
  assert.match(typescript.stderr, /^barnraise-agent join: --max-gpu-memory caps GPU memory for torch on CUDA, but --executor typescript trains on the CPU; drop it \(--max-memory caps this host's memory\)/)
  assert.equal(existsSync(join(dir, 'lock.json')), false, 'the refused join let its data directory go')
  const cpu = await joinWith(['--token', 'brt_x', '--data-dir', dir, '--device', 'cpu', '--max-gpu-memory', '8GiB'])
  assert.equal(cpu.code, 2)
  assert.match(cpu.stderr, /but --device cpu trains on the CPU/)
  const size = await joinWith(['--token', 'brt_x', '--data-dir', dir, '--max-memory', '16GiB', '--max-gpu-memory', 'twenty'])
  assert.equal(size.code, 2)
  assert.match(size.stderr, /^barnraise-agent join: --max-gpu-memory cannot be "twenty": give a size such as 8GiB/)
  assert.doesNotMatch(size.stderr, /already running/)
})
