import { test, onTestFinished } from 'vitest'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { secureDataDir } from './data-dir.ts'
import { runJoinCommand } from './commands/join.ts'

const mode = (path: string): number => statSync(path).mode & 0o777

function scratch (): string {
  const root = mkdtempSync(join(tmpdir(), 'barnraise-data-dir-'))
  onTestFinished(() => { rmSync(root, { recursive: true, force: true }) })
  return root
}

test('the data directory is created for its owner alone, and an existing one is tightened', () => {
  const root = scratch()
  const previous = process.umask(0o022)
  try {
    const fresh = join(root, 'a', 'agent')
    secureDataDir(fresh)
    assert.equal(mode(fresh), 0o700)
    // One left by an older agent (755 under umask 022), with files in it.
    const old = join(root, 'old')
    mkdirSync(old, { mode: 0o755 })
    writeFileSync(join(old, 'enrollment.json'), '{}')
    assert.equal(mode(old), 0o755)
    secureDataDir(old)
    assert.equal(mode(old), 0o700)
  } finally {
    process.umask(previous)
  }
})

test('join makes the data directory private before it locks it', async () => {
  const dir = join(scratch(), 'agent')
  mkdirSync(dir, { mode: 0o755 })
  // Held by a live process (this one's parent), so join stops right after taking the directory.
  writeFileSync(join(dir, 'lock.json'), JSON.stringify({ pid: process.ppid, holder: 'a test', startedAt: new Date().toISOString() }))
  const code = await runJoinCommand(['--coordinator', '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf', '--token', 't', '--data-dir', dir, '--no-train'])
  assert.equal(code, 2)
  assert.equal(mode(dir), 0o700)
})
