import { test, onTestFinished, vi } from 'vitest'
import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DataDirError, secureDataDir } from './data-dir.ts'
import { runJoinCommand } from './commands/join.ts'

const mode = (path: string): number => statSync(path).mode & 0o777

function scratch (): string {
  const root = mkdtempSync(join(tmpdir(), 'barnraise-data-dir-'))
  onTestFinished(() => { rmSync(root, { recursive: true, force: true }) })
  return root
}

/** Runs `body` under umask 022, as most machines have it. */
function underUmask<T> (body: () => T): T {
  const previous = process.umask(0o022)
  try {
    return body()
  } finally {
    process.umask(previous)
  }
}

/** `join` on `dir` against an unreachable coordinator, with what it wrote to stderr. */
async function joinWithStderr (dir: string): Promise<{ code: number, errors: string[] }> {
  const errors: string[] = []
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => { errors.push(String(chunk)); return true })
  try {
    const code = await runJoinCommand(['--coordinator', '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf', '--token', 't', '--data-dir', dir, '--no-train'])
    return { code, errors }
  } finally {
    spy.mockRestore()
  }
}

test('a data directory the agent creates is for its owner alone', () => {
  const root = scratch()
  underUmask(() => {
    const fresh = join(root, 'a', 'agent')
    assert.deepEqual(secureDataDir(fresh), { created: true })
    assert.equal(mode(fresh), 0o700)
    // Made private, it needs no warning the next time.
    assert.deepEqual(secureDataDir(fresh), { created: false })
    assert.equal(mode(fresh), 0o700)
  })
})

test('the default data directory, a folder named for the agent, is tightened when an older agent left it open', () => {
  const root = scratch()
  vi.stubEnv('XDG_DATA_HOME', root)
  onTestFinished(() => { vi.unstubAllEnvs() })
  underUmask(() => {
    const old = join(root, 'barnraise-agent')
    mkdirSync(old, { mode: 0o755 })
    writeFileSync(join(old, 'enrollment.json'), '{}')
    assert.deepEqual(secureDataDir(old), { created: false })
    assert.equal(mode(old), 0o700)
  })
})

test('an existing directory named with --data-dir keeps its mode: the agent makes only its own folders private, and warns once with what to do', () => {
  const root = scratch()
  underUmask(() => {
    // Someone's home, or a shared mount.
    const shared = join(root, 'home')
    mkdirSync(shared, { mode: 0o755 })
    writeFileSync(join(shared, 'notes.txt'), 'mine')
    const first = secureDataDir(shared)
    assert.equal(mode(shared), 0o755, 'its mode is not the agent\'s to change')
    assert.equal(mode(join(shared, 'notes.txt')), 0o644)
    assert.equal(mode(join(shared, 'blobs')), 0o700, 'the folders the agent creates in it are private')
    assert.equal(mode(join(shared, 'runs')), 0o700)
    assert.equal(first.created, false)
    assert.match(first.warning ?? '', /open to other users of this machine \(mode 0755\)/)
    assert.match(first.warning ?? '', /the agent keeps its key 0600, blobs\/ 0700, runs\/ 0700/)
    assert.match(first.warning ?? '', new RegExp(`run chmod 700 '${shared}'; otherwise join with --data-dir naming a folder that does not exist yet`))
    // Folders of the same names that were there before are not the agent's to change either; the warning names them.
    const older = join(root, 'older')
    mkdirSync(join(older, 'blobs'), { recursive: true, mode: 0o755 })
    const second = secureDataDir(older)
    assert.equal(mode(join(older, 'blobs')), 0o755)
    assert.match(second.warning ?? '', /read enrollment\.json .* and blobs\/ \(mode 0755: cached checkpoints/)
    // Closed to others, it needs no warning.
    const closed = join(root, 'closed')
    mkdirSync(closed, { mode: 0o700 })
    assert.deepEqual(secureDataDir(closed), { created: false })
  })
})

test('a peer key open to other users is refused before anything changes', () => {
  const root = scratch()
  underUmask(() => {
    const dir = join(root, 'agent')
    mkdirSync(dir, { mode: 0o755 })
    writeFileSync(join(dir, 'peer.key'), 'key', { mode: 0o644 })
    assert.throws(() => secureDataDir(dir), (err) => {
      assert.ok(err instanceof DataDirError)
      assert.equal(err.code, 'ERR_KEY_EXPOSED')
      assert.match(err.message, /peer\.key is open to other users of this machine \(mode 0644\)/)
      assert.match(err.message, /chmod 600 '.*peer\.key'.*move it aside/)
      return true
    })
    assert.equal(mode(dir), 0o755)
    assert.throws(() => statSync(join(dir, 'blobs')), /ENOENT/, 'nothing was made')
    // Tightened as the message says, it is used.
    chmodSync(join(dir, 'peer.key'), 0o600)
    assert.equal(secureDataDir(dir).created, false)
  })
})

test('an existing directory other users may write is refused: they could plant links where the agent keeps its state', () => {
  const root = scratch()
  underUmask(() => {
    for (const open of [0o777, 0o775, 0o757]) {
      const dir = join(root, `shared-${open.toString(8)}`)
      mkdirSync(dir)
      chmodSync(dir, open)
      assert.throws(() => secureDataDir(dir), (err) => {
        assert.ok(err instanceof DataDirError)
        assert.equal(err.code, 'ERR_DATA_DIR')
        assert.match(err.message, new RegExp(`can be written by other users of this machine \\(mode 0${open.toString(8)}\\)`))
        assert.match(err.message, /chmod 700 '.*'; otherwise join with --data-dir naming a folder that does not exist yet/)
        return true
      })
      assert.throws(() => statSync(join(dir, 'blobs')), /ENOENT/, 'nothing was made in it')
      assert.equal(mode(dir), open, 'and its mode is left alone')
    }
  })
})

test('modes mean nothing on Windows: the directory is only made', () => {
  const dir = join(scratch(), 'agent')
  assert.deepEqual(secureDataDir(dir, 'win32'), { created: true })
})

test('join leaves an existing --data-dir\'s mode alone and warns on stderr before it locks it', async () => {
  const dir = join(scratch(), 'agent')
  mkdirSync(dir, { mode: 0o755 })
  // Held by a live process (this one's parent), so join stops right after taking the directory.
  writeFileSync(join(dir, 'lock.json'), JSON.stringify({ pid: process.ppid, holder: 'a test', startedAt: new Date().toISOString() }))
  const { code, errors } = await joinWithStderr(dir)
  assert.equal(code, 2)
  assert.equal(mode(dir), 0o755)
  assert.equal(errors.filter((e) => e.includes('is open to other users')).length, 1, errors.join(''))
  assert.match(errors.join(''), /an agent is already running with/)
})

test('join refuses a data directory whose key is open to other users, saying what to do', async () => {
  const dir = join(scratch(), 'agent')
  mkdirSync(dir, { mode: 0o700 })
  writeFileSync(join(dir, 'peer.key'), 'key', { mode: 0o640 })
  const { code, errors } = await joinWithStderr(dir)
  assert.equal(code, 2)
  assert.match(errors.join(''), /mode 0640.*chmod 600.*\(ERR_KEY_EXPOSED\)/s)
})
