import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readWholeFile, sha256Hex } from './large-files.ts'

test('a file past 2 GiB is read whole and hashed as a stream hashes it (a 1B model\'s checkpoint is 4.4 GB)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-large-'))
  try {
    const path = join(dir, 'big.bin')
    const size = 2 ** 31 + 4096
    // Sparse but for marks at the start, astride each 1 GiB slice and the 2 GiB limit, and at the end.
    const marks = [0, 2 ** 30 - 1, 2 ** 30, 2 ** 31 - 1, 2 ** 31, size - 1]
    const file = await open(path, 'w')
    await file.truncate(size)
    for (const [i, at] of marks.entries()) await file.write(Uint8Array.of(i + 1), 0, 1, at)
    await file.close()
    const bytes = await readWholeFile(path)
    assert.equal(bytes.byteLength, size)
    assert.deepEqual(marks.map((at) => bytes[at]), marks.map((_, i) => i + 1))
    assert.equal(bytes[12345], 0)
    const streamed = createHash('sha256')
    for await (const chunk of createReadStream(path, { highWaterMark: 16 * 1024 * 1024 })) streamed.update(chunk as Buffer)
    assert.equal(sha256Hex(bytes), streamed.digest('hex'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}, 120_000)

test('small inputs: an empty file, and the hash of a few bytes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-large-'))
  try {
    await writeFile(join(dir, 'empty'), '')
    assert.equal((await readWholeFile(join(dir, 'empty'))).byteLength, 0)
    assert.equal(sha256Hex(new TextEncoder().encode('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
