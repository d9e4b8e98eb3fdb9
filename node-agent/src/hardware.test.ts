import { test } from 'vitest'
import assert from 'node:assert/strict'
import { hardwareProfileSchema, unitDeclineSchema } from '@barnraise/protocol'
import { machineText, parseNvidiaSmi, probeHardware } from './hardware.ts'
import { unitDecline } from './work-loop.ts'

test('an odd CPU or GPU name from the machine is made plain text, so the coordinator takes the profile', async () => {
  assert.equal(machineText('  Intel(R) Xeon(R)\u0000 CPU\t@ 2.40GHz\u001b[0m \n', 200), 'Intel(R) Xeon(R)  CPU @ 2.40GHz [0m')
  assert.equal(machineText('AMD \u202EEPYC', 200), 'AMD  EPYC')
  assert.equal(machineText('ab🚀', 3), 'ab', 'a cut through a surrogate pair leaves no half of it')
  const gpus = parseNvidiaSmi('NVIDIA \u0007H100\u202E 80GB HBM3, 81559, 550.54\u0000.15\nNVIDIA A100, 40960, 535.1\n')
  assert.deepEqual(gpus, [
    { name: 'NVIDIA  H100  80GB HBM3', memoryMiB: 81559, driverVersion: '550.54 .15' },
    { name: 'NVIDIA A100', memoryMiB: 40960, driverVersion: '535.1' }
  ])
  const profile = { hostname: machineText('host\u0085name', 255), platform: 'linux', arch: 'x64', cpuModel: machineText('\u009bweird cpu\r', 200), cpuCores: 4, memoryBytes: 1, gpus }
  assert.equal(hardwareProfileSchema.safeParse(profile).success, true)
  assert.equal(hardwareProfileSchema.safeParse(await probeHardware()).success, true, 'this machine\'s own profile')
})

test('a decline built from an executor\'s error passes the coordinator\'s schema whatever the error said', () => {
  const id = '2b9cf3c4-5c4f-4a53-9f4e-0d0f2b8e7a11'
  const decline = unitDecline(id, 'ERR_OUT_OF_MEMORY', 'CUDA out of memory.\r\n\tTried to allocate \u001b[31m2.00 GiB\u0000\u202E' + 'x'.repeat(3000))
  assert.equal(unitDeclineSchema.safeParse(decline).success, true)
  assert.ok(decline.message.startsWith('CUDA out of memory.\n\tTried to allocate  [31m2.00 GiB  x'), JSON.stringify(decline.message.slice(0, 60)))
  assert.equal(decline.message.length, 1999, 'cut to 2000 characters, then CR LF became LF')
  assert.equal(unitDecline(id, 'ERR_\u001bX', 'ok').code, 'ERR_ X')
})
