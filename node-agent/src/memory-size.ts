/** Bytes per unit, case aside: binary (KiB …) as memory is sold, decimal (KB …) as disks are. */
const UNITS: Readonly<Record<string, number>> = {
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12
}

const SIZE = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i

/**
 * Parses a memory size such as `8GiB`, `512MiB` or `1.5 GiB` (KiB, MiB, GiB, TiB; KB, MB, GB, TB;
 * any case) into whole bytes. A bare number is GiB, as `--max-memory 0.5` always meant. Returns
 * the bytes, or a message naming `flag` and what it takes.
 */
export function parseMemorySize (text: string, flag: string): { ok: true, bytes: number } | { ok: false, message: string } {
  const refuse = (why: string): { ok: false, message: string } =>
    ({ ok: false, message: `${flag} ${why}: give a size such as 8GiB or 512MiB (KiB, MiB, GiB, TiB, or KB, MB, GB, TB; a bare number is GiB)` })
  const match = SIZE.exec(text.trim())
  if (match === null) return refuse(`cannot be "${text}"`)
  const unit = match[2]!.toLowerCase()
  const scale = unit === '' ? UNITS.gib! : UNITS[unit]
  if (scale === undefined) return refuse(`has an unknown unit "${match[2]}"`)
  const bytes = Math.floor(Number(match[1]) * scale)
  if (!(bytes >= 1)) return refuse('must be more than zero')
  if (!Number.isSafeInteger(bytes)) return refuse(`is more memory than any machine has ("${text}")`)
  return { ok: true, bytes }
}

