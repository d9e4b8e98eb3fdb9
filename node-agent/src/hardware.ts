import { execFile } from 'node:child_process'
import { cpus, hostname, totalmem, platform, arch } from 'node:os'
import { toPlainText } from '@barnraise/protocol'
import type { Gpu, HardwareProfile } from '@barnraise/protocol'

/**
 * Parses `nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits`.
 * Names are the driver's text: control characters become spaces, as the coordinator refuses them.
 */
export function parseNvidiaSmi (output: string): Gpu[] {
  const gpus: Gpu[] = []
  for (const line of output.split('\n')) {
    const fields = line.split(',').map((f) => f.trim())
    if (fields.length < 2 || fields[0] === '') continue
    const memoryMiB = Number.parseInt(fields[1] ?? '', 10)
    gpus.push({
      name: machineText(fields[0]!, 200),
      memoryMiB: Number.isFinite(memoryMiB) && memoryMiB >= 0 ? memoryMiB : 0,
      ...(fields[2] !== undefined && fields[2] !== '' ? { driverVersion: machineText(fields[2], 50) } : {})
    })
  }
  return gpus
}

/** Lists NVIDIA GPUs; a machine without `nvidia-smi` (or without a driver) simply has none. */
export async function probeGpus (timeoutMs = 5_000): Promise<Gpu[]> {
  return await new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader,nounits'], { timeout: timeoutMs }, (err, stdout) => {
      resolve(err === null ? parseNvidiaSmi(stdout) : [])
    })
  })
}

/**
 * What the machine says about itself, as the coordinator takes it: at most `max` characters of
 * plain text (control and bidirectional formatting characters, and a surrogate pair the cut
 * split, become spaces: see plain-text.ts), trimmed. A CPU model from /proc/cpuinfo or a GPU
 * name is the vendor's text, and an odd one must not get an honest node refused.
 */
export function machineText (text: string, max: number): string {
  return toPlainText(text.trim().slice(0, max)).trim()
}

/** Describes this machine: CPU, memory, GPUs. */
export async function probeHardware (): Promise<HardwareProfile> {
  const cpu = cpus()
  return {
    hostname: machineText(hostname(), 255),
    platform: machineText(platform(), 50),
    arch: machineText(arch(), 50),
    cpuModel: machineText(cpu[0]?.model ?? 'unknown', 200) || 'unknown',
    cpuCores: Math.max(1, cpu.length),
    memoryBytes: totalmem(),
    gpus: await probeGpus()
  }
}

/** One human-readable paragraph for `barnraise-agent info`. */
export function formatHardware (hw: HardwareProfile): string {
  const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1)
  const lines = [
    `host:    ${hw.hostname} (${hw.platform}/${hw.arch})`,
    `cpu:     ${hw.cpuModel} × ${hw.cpuCores} cores`,
    `memory:  ${gib(hw.memoryBytes)} GiB`
  ]
  if (hw.gpus.length === 0) lines.push('gpus:    none found (no nvidia-smi or no NVIDIA driver); CPU training only')
  for (const [i, g] of hw.gpus.entries()) lines.push(`gpu ${i}:   ${g.name}, ${(g.memoryMiB / 1024).toFixed(1)} GiB${g.driverVersion !== undefined ? `, driver ${g.driverVersion}` : ''}`)
  return lines.join('\n')
}
