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
