import { test, onTestFinished } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readTokenFile } from './token-file.ts'

function scratch (): string {
  const root = mkdtempSync(join(tmpdir(), 'barnraise-token-file-'))
  onTestFinished(() => { rmSync(root, { recursive: true, force: true }) })
  return root
}

test('a token file gives its token without the spaces and line breaks around it; a private one needs no warning', async () => {
  const path = join(scratch(), 'token')
  writeFileSync(path, '  brt_abc-DEF_123\r\n', { mode: 0o600 })
  assert.deepEqual(await readTokenFile(path), { ok: true, token: 'brt_abc-DEF_123' })
})

test('a token file other users may read is used, with a warning saying what to do', async () => {
  const path = join(scratch(), 'token')
  writeFileSync(path, 'brt_abc\n', { mode: 0o644 })
  const read = await readTokenFile(path)
  assert.ok(read.ok)
  assert.equal(read.token, 'brt_abc')
  assert.match(read.warning ?? '', /open to other users of this machine \(mode 0644\).*chmod 600 '.*token'/)
  assert.deepEqual(await readTokenFile(path, 'win32'), { ok: true, token: 'brt_abc' }, 'modes mean nothing on Windows')
})

test('a token file that cannot hold a token is refused, naming the flag and what to do', async () => {
  const root = scratch()
  const cases: Array<[string, string | undefined, RegExp]> = [
    ['missing', undefined, /cannot read --token-file .*missing \(ENOENT\)/],
    ['empty', ' \n', /--token-file .*empty is empty/],
    ['two', 'brt_a\nbrt_b\n', /holds more than one word/],
    ['long', 'x'.repeat(201), /holds 201 characters; a token has at most 200/],
    ['huge', 'x'.repeat(10_000), /larger than a token/]
  ]
  for (const [name, text, message] of cases) {
    const path = join(root, name)
    if (text !== undefined) writeFileSync(path, text, { mode: 0o600 })
    const read = await readTokenFile(path)
    assert.equal(read.ok, false, name)
    assert.match(read.ok ? '' : read.message, message, name)
  }
  const dir = await readTokenFile(root)
  assert.match(dir.ok ? '' : dir.message, /is a directory/)
})

test('a token may come through a pipe (`--token-file <(pass show lab-token)`), read to its end', async () => {
  const fifo = join(scratch(), 'fifo')
  const made = spawnSync('mkfifo', [fifo])
  assert.equal(made.status, 0, String(made.stderr))
  // The writer opens the pipe once the reader has; it writes in two pieces.
  const writer = (async () => {
    const file = await open(fifo, 'w')
    await file.write('brt_pi')
    await file.write('ped\n')
    await file.close()
  })()
  const read = await readTokenFile(fifo)
  await writer
  assert.deepEqual(read, { ok: true, token: 'brt_piped' })
})
