import { test, onTestFinished } from 'vitest'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes as nodeRandomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tarChunks, tarHeader, tarSize } from './tar-writer.ts'
import type { TarEntry } from './tar-writer.ts'

const randomBytes = (n: number): Uint8Array => new Uint8Array(nodeRandomBytes(n))
const MTIME = new Date('2026-11-22T10:00:00Z')

async function * chunked (bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += size) yield bytes.subarray(i, i + size)
}

function file (name: string, bytes: Uint8Array): TarEntry {
  return { type: 'file', name, mtime: MTIME, size: bytes.byteLength, read: () => chunked(bytes, 4096) }
}

async function collect (entries: TarEntry[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const chunk of tarChunks(entries)) parts.push(new Uint8Array(chunk))
  return new Uint8Array(Buffer.concat(parts))
}

function tar (args: string[], cwd: string): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync('tar', args, { cwd, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('the archive has the announced size and extracts with the system tar to the same bytes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-tar-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  const longDir = `folder/${'d'.repeat(90)}`
  const contents = new Map<string, Uint8Array>([
    ['folder/empty.txt', new Uint8Array(0)],
    ['folder/one.bin', randomBytes(1)],
    ['folder/block.bin', randomBytes(512)],
    ['folder/block-and-one.bin', randomBytes(513)],
    ['folder/model.safetensors', randomBytes(300_001)],
    [`${longDir}/${'f'.repeat(60)}.json`, new TextEncoder().encode('{"long": "name in the ustar prefix"}\n')]
  ])
  const entries: TarEntry[] = [{ type: 'directory', name: 'folder', mtime: MTIME }, { type: 'directory', name: longDir, mtime: MTIME }]
  for (const [name, bytes] of contents) entries.push(file(name, bytes))
  const archive = await collect(entries)
  assert.equal(archive.byteLength, tarSize(entries))
  assert.equal(archive.byteLength % 512, 0)
  await writeFile(join(dir, 'a.tar'), archive)

  const listed = tar(['-tvf', 'a.tar'], dir)
  assert.equal(listed.status, 0, listed.stderr)
  assert.match(listed.stdout, /^drwxr-xr-x 0\/0 +0 2026-11-22 \d\d:\d\d folder\/$/m)
  assert.match(listed.stdout, /^-rw-r--r-- 0\/0 +300001 2026-11-22 \d\d:\d\d folder\/model\.safetensors$/m)

  const extracted = tar(['-xf', 'a.tar'], dir)
  assert.equal(extracted.status, 0, extracted.stderr)
  for (const [name, bytes] of contents) assert.deepEqual(new Uint8Array(await readFile(join(dir, name))), bytes, name)
})

test('sizes past 8 GiB use the base-256 size field that tar reads', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-tar-big-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  const size = 9_000_000_001
  const header = tarHeader({ type: 'file', name: 'big/model.safetensors', mtime: MTIME, size, read: () => chunked(new Uint8Array(0), 1) })
  assert.equal(header[124], 0x80)
  // Only the header and a little data: tar lists the member, then reports the archive cut short.
  await writeFile(join(dir, 'big.tar'), Buffer.concat([header, new Uint8Array(1024)]))
  const listed = tar(['-tvf', 'big.tar'], dir)
  assert.match(listed.stdout, new RegExp(` ${size} 2026-11-22 \\d\\d:\\d\\d big/model\\.safetensors`))
})

test('a file that yields other than its announced size stops the stream; bad names are refused', async () => {
  const bytes = randomBytes(1000)
  await assert.rejects(collect([{ type: 'file', name: 'short', mtime: MTIME, size: 1001, read: () => chunked(bytes, 100) }]), /ended after 1000 of 1001 bytes/)
  await assert.rejects(collect([{ type: 'file', name: 'long', mtime: MTIME, size: 999, read: () => chunked(bytes, 100) }]), /longer than the 999 bytes/)
  for (const name of ['../escape', '/abs', 'ünï', 'a\nb', `${'x'.repeat(101)}`]) {
    assert.throws(() => tarHeader({ type: 'directory', name, mtime: MTIME }), /tar member name/, name)
  }
})
