import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { cleanCpuModel, formatBytes, formatCodecs, formatCount, formatDuration, formatGiB, formatHours, formatLoss, formatRate, formatThroughput, formatUsd, groupGpus, plural, shortHash, shortPeerId } from './format.ts'

describe('dashboard formatting', () => {
  test('bytes and gigabytes', () => {
    assert.equal(formatBytes(512), '512 B')
    assert.equal(formatBytes(1536), '1.5 KiB')
    assert.equal(formatBytes(8 * 1024 * 1024), '8.0 MiB')
    assert.equal(formatBytes(150 * 1024 ** 3), '150 GiB')
    assert.equal(formatGiB(0), '0 GiB')
    assert.equal(formatGiB(16 * 1024 ** 3), '16.0 GiB')
    assert.equal(formatGiB(512 * 1024 ** 3), '512 GiB')
  })

  test('counts, money, hours and losses', () => {
    assert.equal(formatCount(950), '950')
    assert.equal(formatCount(12_345_678), '12.3M')
    assert.equal(formatUsd(1500), '$1,500')
    assert.equal(formatUsd(12.5), '$12.50')
    assert.equal(formatHours(0), '0')
    assert.equal(formatHours(0.00123), '0.0012')
    assert.equal(formatHours(2.5), '2.50')
    assert.equal(formatHours(1234.4), '1,234')
    assert.equal(formatLoss(null), '—')
    assert.equal(formatLoss(3.14159), '3.142')
    assert.equal(plural(1, 'node'), '1 node')
    assert.equal(plural(2500, 'node'), '2,500 nodes')
  })

  test('durations and throughput', () => {
    assert.equal(formatDuration(4.25), '4.3 s')
    assert.equal(formatDuration(42), '42 s')
    assert.equal(formatDuration(75), '1 min 15 s')
    assert.equal(formatDuration(120), '2 min')
    assert.equal(formatDuration(3 * 3600 + 5 * 60), '3 h 5 min')
    assert.equal(formatThroughput(1200, 1), '1.2K tok/s')
    assert.equal(formatThroughput(10, 0), '—')
  })

  test('upload rates in decimal units, and the codecs a run allows', () => {
    assert.equal(formatRate(null), '—')
    assert.equal(formatRate(512), '512 B/s')
    assert.equal(formatRate(12_345_678), '12.3 MB/s')
    assert.equal(formatRate(250_000_000), '250 MB/s')
    assert.equal(formatRate(1.5e9), '1.5 GB/s')
    assert.equal(formatCodecs('int8', undefined), 'int8')
    assert.equal(formatCodecs('int8', ['int8']), 'int8')
    assert.equal(formatCodecs('int8', ['int8', 'topk']), 'int8, or topk on slow links')
    assert.equal(formatCodecs('fp32', ['fp32', 'fp16', 'int8', 'topk']), 'fp32, or fp16, int8 or topk on slow links')
  })

  test('machines and identifiers', () => {
    assert.equal(cleanCpuModel('Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz'), 'Intel Xeon E5-2680 v4 @ 2.40GHz')
    assert.equal(cleanCpuModel('AMD EPYC 9654 96-Core Processor'), 'AMD EPYC 9654')
    assert.equal(cleanCpuModel('(R)'), 'Unknown CPU')
    assert.deepEqual(groupGpus([{ name: 'A100', memoryMiB: 81920 }, { name: 'A100', memoryMiB: 81920 }, { name: 'T4', memoryMiB: 15360 }]), [
      { name: 'A100', memoryMiB: 81920, count: 2 }, { name: 'T4', memoryMiB: 15360, count: 1 }
    ])
    assert.equal(shortPeerId('12D3KooWAbcdefghijklmnopqrstuvwxyz'), '12D3KooW…uvwxyz')
    assert.equal(shortPeerId('short'), 'short')
    assert.equal(shortHash('0123456789abcdef'), '0123456789ab…')
  })
})
