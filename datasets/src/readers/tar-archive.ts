// The members of a tar archive (POSIX ustar, with pax and GNU long names), found without
// extracting anything: a dataset of several files arrives as one upload, and each member is
// read in place as a span of the archive. Only regular files are members; directories, links
// and devices are passed over (nothing is ever written to disk from an archive).
import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { DatasetError } from '../dataset-error.ts'
import type { FileSpan } from './file-span.ts'

const BLOCK = 512

/** One regular file in an archive: its path inside it and where its bytes are. */
export interface TarMember { name: string, span: FileSpan }

/** Whether the file starts with a ustar header whose checksum holds. */
export async function isTarArchive (path: string): Promise<boolean> {
  const file = await open(path, 'r')
  try {
    const header = Buffer.alloc(BLOCK)
    const { bytesRead } = await file.read(header, 0, BLOCK, 0)
    return bytesRead === BLOCK && header.toString('latin1', 257, 262) === 'ustar' && checksumHolds(header)
  } finally {
    await file.close()
  }
}

/** The archive's regular files in archive order; a damaged or truncated archive is refused with where. */
export async function tarMembers (path: string): Promise<TarMember[]> {
  const file = await open(path, 'r')
  try {
    return await readMembers(file, path, (await file.stat()).size)
  } finally {
    await file.close()
  }
}

async function readMembers (file: FileHandle, path: string, size: number): Promise<TarMember[]> {
  const members: TarMember[] = []
  const header = Buffer.alloc(BLOCK)
  let at = 0
  // A pax record (path, size) or a GNU long name describes the member after it.
  let longName: string | null = null
  let paxSize: number | null = null
  for (;;) {
    if (at + BLOCK > size) {
      if (at === size) break // no end-of-archive blocks: tolerated, as tar itself does
      throw bad(`the archive is truncated at byte ${at}`)
    }
    await file.read(header, 0, BLOCK, at)
    if (header.every((b) => b === 0)) break
    if (!checksumHolds(header)) throw bad(`the header at byte ${at} is damaged (its checksum does not hold)`)
    const type = String.fromCharCode(header[156]!)
    const entry = type !== 'x' && type !== 'L' && type !== 'g'
    const length = entry && paxSize !== null ? paxSize : octalOrBinary(header.subarray(124, 136), at)
    const dataStart = at + BLOCK
    if (dataStart + length > size) throw bad(`the member at byte ${at} claims ${length} bytes, past the end of the archive`)
    if (type === 'x' || type === 'L') {
      if (length > 1024 * 1024) throw bad(`the long-name record at byte ${at} is ${length} bytes`)
      const data = Buffer.alloc(length)
      await file.read(data, 0, length, dataStart)
      if (type === 'L') {
        longName = cString(data)
      } else {
        const records = paxRecords(data)
        longName = records.get('path') ?? longName
        const sizeText = records.get('size')
        if (sizeText !== undefined) {
          if (!/^\d+$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw bad(`the pax record at byte ${at} gives size ${JSON.stringify(sizeText.slice(0, 30))}`)
          paxSize = Number(sizeText)
        }
      }
    } else if (entry) {
      const name = longName ?? joinUstarName(header)
      longName = null
      paxSize = null
      if (type === '0' || type === '\0' || type === '7') members.push({ name, span: { path, start: dataStart, end: dataStart + length } })
    }
    at = dataStart + Math.ceil(length / BLOCK) * BLOCK
  }
  return members
}

function bad (message: string): DatasetError {
  return new DatasetError('ERR_BAD_FILE', `not a readable tar archive: ${message}`)
}

function checksumHolds (header: Buffer): boolean {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!
  const stored = parseInt(header.toString('latin1', 148, 156).replace(/[\0 ]+$/, '').trim(), 8)
  return stored === sum
}

/** A size field: octal text, or GNU's base-256 for sizes of 8 GiB and more. */
function octalOrBinary (field: Buffer, at: number): number {
  if ((field[0]! & 0x80) !== 0) {
    let n = 0
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!
    if (!Number.isSafeInteger(n)) throw bad(`the member at byte ${at} has a size beyond what can be read`)
    return n
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').trim()
  if (!/^[0-7]*$/.test(text)) throw bad(`the member at byte ${at} has a size field that is not octal`)
  return text === '' ? 0 : parseInt(text, 8)
}

function cString (bytes: Buffer): string {
  const end = bytes.indexOf(0)
  return bytes.toString('utf8', 0, end < 0 ? bytes.length : end)
}

function joinUstarName (header: Buffer): string {
  const name = cString(header.subarray(0, 100))
  const prefix = cString(header.subarray(345, 500))
  return prefix === '' ? name : `${prefix}/${name}`
}

/** A pax extended header's records ("<length> <key>=<value>\n"). */
function paxRecords (data: Buffer): Map<string, string> {
  const records = new Map<string, string>()
  // Record lengths count bytes, so the records are cut from the bytes, not from decoded text.
  let at = 0
  while (at < data.length) {
    const space = data.indexOf(0x20, at)
    if (space < 0) break
    const length = Number(data.toString('latin1', at, space))
    if (!Number.isInteger(length) || length <= space - at || at + length > data.length) break
    const record = data.toString('utf8', space + 1, at + length - 1)
    const eq = record.indexOf('=')
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1))
    at += length
  }
  return records
}
