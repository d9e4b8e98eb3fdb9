import { test } from 'vitest'
import assert from 'node:assert/strict'
import { formatDeviceHours, formatPledgeAmount } from './pledge-units.ts'

test('pledge amounts and delivered hours carry their unit', () => {
  assert.equal(formatPledgeAmount('usd', 250), '$250')
  assert.equal(formatPledgeAmount('gpu_hours', 1.5), '1.50 GPU-h')
  assert.equal(formatPledgeAmount('cpu_core_hours', 4), '4.00 CPU core-h')
  assert.equal(formatDeviceHours('gpu', 0.5), '0.50 GPU-h')
  assert.equal(formatDeviceHours('cpu', 12), '12 CPU core-h')
})
