import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, symlink, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parquetWriteFile } from 'hyparquet-writer'
import { describe, expect, it } from 'vitest'
import { catalogTokenizer } from '../tokenizers/catalog.ts'
import { buildDataset } from '../ingest/build-dataset.ts'
import { openReader, openReaders } from './open-reader.ts'
import type { DocumentReader, ReadItem } from './source-document.ts'
import { isTarArchive, tarMembers } from './tar-archive.ts'

const text = (i: number): string => `Document ${i} tells of ${i % 2 === 0 ? 'fields' : 'rivers'} and ${i * 3} sheep.`

async function all (reader: DocumentReader): Promise<ReadItem[]> {
  const out: ReadItem[] = []
  for await (const item of reader.items()) out.push(item)
  return out
}

/** A folder of dataset files and a tar of it made by the system's tar (GNU tar here, pax with --format=pax). */
async function archive (files: Record<string, string | Uint8Array>, tarArgs: string[] = []): Promise<{ dir: string, tar: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ds-tar-'))
  const src = join(dir, 'src')
  for (const [name, body] of Object.entries(files)) {
    await mkdir(join(src, name, '..'), { recursive: true })
    await writeFile(join(src, name), body)
  }
  const tar = join(dir, 'data.tar')
  execFileSync('tar', ['-cf', tar, ...tarArgs, '-C', src, ...Object.keys(files)])
  return { dir, tar }
}

/** One ustar header block (name, size field, type), with its checksum, as tar writes it. */
function header (name: string, size: number, type: string): Buffer {
  const h = Buffer.alloc(512)
  h.write(name, 0, 'utf8')
  h.write('0000644\0', 100, 'latin1')
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1')
  h.write(type, 156, 'latin1')
  h.write('ustar\u000000', 257, 'latin1')
  h.fill(0x20, 148, 156)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
  return h
}

const padded = (data: Buffer): Buffer => Buffer.concat([data, Buffer.alloc((512 - data.length % 512) % 512)])

/** A pax record: its length counts its own digits. */
function paxRecord (key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  let length = Buffer.byteLength(body) + 1
  while (String(length).length + Buffer.byteLength(body) !== length) length++
  return `${length}${body}`
}

describe('datasets of several files', () => {
  it('reads a tar archive of JSONL files member by member, each locator naming its file', async () => {
    const { tar } = await archive({
      'part-1.jsonl': [1, 2].map((i) => JSON.stringify({ text: text(i) })).join('\n'),
      'nested/part-2.jsonl': [3, 4].map((i) => JSON.stringify({ text: text(i) })).join('\n') + '\n{oops\n',
      'nested/._part-2.jsonl': 'macOS resource fork, not data'
    })
    expect(await isTarArchive(tar)).toBe(true)
    const reader = await openReader(tar, 'jsonl', 'text')
    const items = await all(reader)
    expect(items.map((i) => i.locator)).toEqual(['part-1.jsonl: line 1', 'part-1.jsonl: line 2', 'nested/part-2.jsonl: line 1', 'nested/part-2.jsonl: line 2', 'nested/part-2.jsonl: line 3'])
    expect(items.filter((i) => i.kind === 'document').map((i) => i.kind === 'document' ? i.text : '')).toEqual([1, 2, 3, 4].map(text))
    expect(items.at(-1)).toMatchObject({ kind: 'bad', reason: expect.stringMatching(/^not JSON/) })
    expect(reader.bytesRead()).toBe(reader.bytesTotal)
  })

  it('reads Parquet members in place (footer first) and builds one dataset whose index names the members', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-pq-'))
    const files: Record<string, Uint8Array> = {}
    // 60 rows in all: a dataset holds out every 50th document and needs one at least.
    const rowsOf = { 'a.parquet': Array.from({ length: 30 }, (_, i) => i), 'b.parquet': Array.from({ length: 30 }, (_, i) => 30 + i) }
    for (const [part, rows] of Object.entries(rowsOf)) {
      parquetWriteFile({ filename: join(dir, part), columnData: [{ name: 'text', data: rows.map(text), type: 'STRING' }] })
      files[part] = await readFile(join(dir, part))
    }
    // Long member names go through pax records.
    const long = `${'deep/'.repeat(30)}c.parquet`
    files[long] = files['b.parquet']!
    const { tar } = await archive(files, ['--format=pax'])
    expect((await tarMembers(tar)).map((m) => m.name)).toEqual(['a.parquet', 'b.parquet', long])
    const items = await all(await openReader(tar, 'parquet', 'text'))
    expect(items.map((i) => i.locator)).toEqual([...['a.parquet', 'b.parquet', long].flatMap((m) => Array.from({ length: 30 }, (_, i) => `${m}: row ${i}`))])
    expect(items.map((i) => i.kind === 'document' ? i.text : '')).toEqual([...rowsOf['a.parquet'], ...rowsOf['b.parquet'], ...rowsOf['b.parquet']].map(text))
    const built = await buildDataset({ reader: await openReader(tar, 'parquet', 'text'), tokenizer: catalogTokenizer('byte'), source: 'data.tar', shardTokens: 100, holdOutEvery: 50, maxValidationTokens: 1000, onShard: async () => {} })
    expect(built.index.source).toBe('data.tar')
    expect(built.index.documents.map(([locator]) => locator)).toContain('b.parquet: row 1')
    expect(built.index.heldOut).toEqual(['b.parquet: row 19'])

    // The same files given one by one (the shard command's several arguments) read alike.
    const separate = await all(await openReaders([join(dir, 'a.parquet'), join(dir, 'b.parquet')], 'parquet', 'text'))
    expect(separate.map((i) => i.locator)).toEqual(items.slice(0, 60).map((i) => i.locator))
  })

  it('passes over links and directories, and refuses an empty, damaged or truncated archive with why', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-bad-'))
    await mkdir(join(dir, 'src', 'empty-dir'), { recursive: true })
    await writeFile(join(dir, 'src', 'real.txt'), 'A paragraph.\n\nAnother one.\n')
    await symlink('/etc/passwd', join(dir, 'src', 'link.txt'))
    const tar = join(dir, 'links.tar')
    execFileSync('tar', ['-cf', tar, '-C', join(dir, 'src'), 'empty-dir', 'link.txt', 'real.txt'])
    const items = await all(await openReader(tar, 'text', null))
    expect(items.map((i) => i.locator)).toEqual(['real.txt: line 1', 'real.txt: line 3'])

    const empty = join(dir, 'empty.tar')
    execFileSync('tar', ['-cf', empty, '-C', join(dir, 'src'), 'empty-dir'])
    await expect(openReader(empty, 'text', null)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: 'the tar archive holds no files' })

    const damaged = join(dir, 'damaged.tar')
    const bytes = await readFile(tar)
    // The second header's size field, changed: its checksum no longer holds.
    const second = 512 * 2
    bytes[second + 124] = 0x37
    await writeFile(damaged, bytes)
    await expect(tarMembers(damaged)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/damaged \(its checksum does not hold\)/) })

    const cut = join(dir, 'cut.tar')
    await writeFile(cut, await readFile(tar))
    // Cut inside real.txt's bytes (its header is the third block, its data the fourth).
    await truncate(cut, 512 * 3 + 10)
    await expect(tarMembers(cut)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^not a readable tar archive: the member at byte 1024 claims 27 bytes, past the end/) })

    // A Parquet member that is not Parquet is named.
    const { tar: mixed } = await archive({ 'good.txt': 'not parquet at all' })
    await expect(all(await openReader(mixed, 'parquet', 'text'))).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/^good\.txt: not a Parquet file/) })
    // A pax header's path and size override the member header's (how pax stores long names and files over 8 GiB).
    const body = Buffer.from('First paragraph.\n\nSecond paragraph.\n')
    const pax = Buffer.from(paxRecord('path', 'folder/ünïcode-name.txt') + paxRecord('size', String(body.length)))
    const crafted = join(dir, 'crafted.tar')
    await writeFile(crafted, Buffer.concat([header('PaxHeader/x', pax.length, 'x'), padded(pax), header('short.txt', 0, '0'), padded(body), Buffer.alloc(1024)]))
    expect((await tarMembers(crafted)).map((m) => [m.name, m.span.end - m.span.start])).toEqual([['folder/ünïcode-name.txt', body.length]])
    expect((await all(await openReader(crafted, 'text', null))).map((i) => i.locator)).toEqual(['folder/ünïcode-name.txt: line 1', 'folder/ünïcode-name.txt: line 3'])
    const negative = Buffer.from(paxRecord('size', '-4'))
    await writeFile(crafted, Buffer.concat([header('PaxHeader/x', negative.length, 'x'), padded(negative), header('short.txt', 0, '0'), Buffer.alloc(1024)]))
    await expect(tarMembers(crafted)).rejects.toMatchObject({ code: 'ERR_BAD_FILE', message: expect.stringMatching(/the pax record at byte 0 gives size "-4"/) })
    // A plain file is still read as itself.
    expect(await isTarArchive(join(dir, 'src', 'real.txt'))).toBe(false)
  })
})
