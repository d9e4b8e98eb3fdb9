/** Binary gigabytes with one decimal under 100 ("15.6 GiB", "512 GiB"). */
export function formatGiB (bytes: number): string {
  const gib = bytes / 1024 ** 3
  if (gib === 0) return '0 GiB'
  return `${gib >= 100 ? Math.round(gib) : gib.toFixed(1)} GiB`
}

/** "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz" → "Intel Xeon E5-2680 v4 @ 2.40GHz". */
export function cleanCpuModel (model: string): string {
  const cleaned = model
    .replace(/\((R|TM|tm|r)\)/g, '')
    .replace(/\bCPU\b/g, '')
    .replace(/\b\d+-Core Processor\b/i, '')
    .replace(/\s+/g, ' ')
    .trim()
  return cleaned === '' ? 'Unknown CPU' : cleaned
}

export interface GpuGroup { name: string, memoryMiB: number, count: number }

/** Identical GPUs folded together: 8 × A100 instead of eight lines. */
export function groupGpus (gpus: Array<{ name: string, memoryMiB: number }>): GpuGroup[] {
  const groups = new Map<string, GpuGroup>()
  for (const gpu of gpus) {
    const key = `${gpu.name}\u0000${gpu.memoryMiB}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, { name: gpu.name, memoryMiB: gpu.memoryMiB, count: 1 })
    else group.count++
  }
  return [...groups.values()]
}

export function formatGpuMemory (memoryMiB: number): string {
  return `${Math.round(memoryMiB / 1024)} GiB`
}

/** "12D3KooWAbc…xyz9" — enough to tell peers apart at a glance. */
export function shortPeerId (peerId: string): string {
  return peerId.length <= 16 ? peerId : `${peerId.slice(0, 8)}…${peerId.slice(-6)}`
}

export function capitalize (word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1)
}

export function plural (count: number, one: string, many = `${one}s`): string {
  return `${count.toLocaleString()} ${count === 1 ? one : many}`
}

/** 12_345_678 → "12.3M"; 950 → "950". */
export function formatCount (n: number): string {
  return new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 }).format(n)
}

/** 1536 → "1.5 KiB"; 3.2e9 → "3.0 GiB". */
export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  if (unit === 0) return `${Math.round(value)} B`
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`
}

const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 })
const usdCents = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 })

/** 1500 → "$1,500"; 12.5 → "$12.50". */
export function formatUsd (amount: number): string {
  return Number.isInteger(amount) ? usd.format(amount) : usdCents.format(amount)
}

/** GPU-hours with precision that still shows the first seconds of a CPU run. */
export function formatHours (hours: number): string {
  if (hours === 0) return '0'
  if (hours < 0.01) return hours.toFixed(4)
  if (hours < 10) return hours.toFixed(2)
  return Math.round(hours).toLocaleString()
}

export function formatLoss (loss: number | null | undefined): string {
  return loss === null || loss === undefined ? '—' : loss.toFixed(3)
}

/** A report's score (loss removed on held-out data): signed, "+0.0123"; "—" when not scored. */
export function formatScore (score: number | null | undefined): string {
  if (score === null || score === undefined) return '—'
  return `${score >= 0 ? '+' : '−'}${Math.abs(score).toFixed(4)}`
}

/** 75 → "1 min 15 s". */
export function formatDuration (seconds: number): string {
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`
  const minutes = Math.floor(seconds / 60)
  const rest = Math.round(seconds % 60)
  if (minutes < 60) return rest === 0 ? `${minutes} min` : `${minutes} min ${rest} s`
  const hours = Math.floor(minutes / 60)
  return `${hours} h ${minutes % 60} min`
}

/** Tokens per compute-second, e.g. "1.2k tok/s". */
export function formatThroughput (tokens: number, computeSeconds: number): string {
  if (computeSeconds <= 0) return '—'
  return `${formatCount(tokens / computeSeconds)} tok/s`
}

/** Bytes a second in decimal units, as links are quoted: 12_300_000 → "12.3 MB/s"; null (not measured) → "—". */
export function formatRate (bytesPerSecond: number | null): string {
  if (bytesPerSecond === null || !Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) return '—'
  const units = ['B/s', 'kB/s', 'MB/s', 'GB/s']
  let value = bytesPerSecond
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++ }
  if (unit === 0) return `${Math.round(value)} B/s`
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`
}

/** A run's codecs for people: "int8", or "int8, or topk on slow links" when smaller ones are allowed too. */
export function formatCodecs (codec: string, codecs: readonly string[] | undefined): string {
  const others = (codecs ?? []).filter((c) => c !== codec)
  if (others.length === 0) return codec
  const list = others.length === 1 ? others[0] : `${others.slice(0, -1).join(', ')} or ${others.at(-1)!}`
  return `${codec}, or ${list} on slow links`
}

export function shortHash (hash: string): string {
  return hash.length <= 12 ? hash : `${hash.slice(0, 12)}…`
}
