import { test } from 'vitest'
import assert from 'node:assert/strict'
import { deviceHours, deviceKindOf } from './device-hours.ts'

const gpu = { name: 'NVIDIA H100', memoryMiB: 81_559 }

test('a node listing a GPU counts GPU-hours, one per wall-clock hour however many GPUs it lists', () => {
  assert.deepEqual(deviceHours(7200, { gpus: [gpu], cpuCores: 64 }), { kind: 'gpu', hours: 2 })
  assert.deepEqual(deviceHours(3600, { gpus: [gpu, gpu, gpu, gpu], cpuCores: 64 }), { kind: 'gpu', hours: 1 })
})

test('a node that trained on several GPUs together counts one GPU-hour per GPU its report names, up to the GPUs it listed', () => {
  const four = { gpus: [gpu, gpu, gpu, gpu], cpuCores: 64 }
  assert.deepEqual(deviceHours(3600, four, 'torch-cuda', 4), { kind: 'gpu', hours: 4 })
  assert.deepEqual(deviceHours(1800, four, 'torch-cuda', 2), { kind: 'gpu', hours: 1 })
  // A report claiming more GPUs than the machine listed gets the listed count.
  assert.deepEqual(deviceHours(3600, four, 'torch-cuda', 8), { kind: 'gpu', hours: 4 })
  assert.deepEqual(deviceHours(3600, { gpus: [gpu], cpuCores: 8 }, 'torch-cuda', 8), { kind: 'gpu', hours: 1 })
  // Devices on a CPU run change nothing: core-hours are already counted per core.
  assert.deepEqual(deviceHours(3600, { gpus: [], cpuCores: 8 }, 'torch-cpu', 2), { kind: 'cpu', hours: 8 })
  assert.deepEqual(deviceHours(3600, four, 'torch-cuda', null), { kind: 'gpu', hours: 1 })
})

test('a CPU-only node counts core-hours: compute-seconds × its claimed cores ÷ 3600', () => {
  assert.deepEqual(deviceHours(1800, { gpus: [], cpuCores: 8 }), { kind: 'cpu', hours: 4 })
})

test('an unknown or nonsensical profile counts as one CPU core; bad seconds count as none', () => {
  assert.equal(deviceKindOf(null), 'cpu')
  assert.deepEqual(deviceHours(3600, null), { kind: 'cpu', hours: 1 })
  assert.deepEqual(deviceHours(3600, { gpus: [], cpuCores: 0 }), { kind: 'cpu', hours: 1 })
  assert.deepEqual(deviceHours(-5, { gpus: [], cpuCores: 4 }), { kind: 'cpu', hours: 0 })
  assert.deepEqual(deviceHours(Number.NaN, { gpus: [gpu], cpuCores: 4 }), { kind: 'gpu', hours: 0 })
})

test('the executor a report names decides, and GPU time needs the hardware to agree', () => {
  // A GPU machine whose rows came from the CPU trainer delivered CPU time, not GPU time.
  assert.deepEqual(deviceHours(3600, { gpus: [gpu], cpuCores: 16 }, 'typescript'), { kind: 'cpu', hours: 16 })
  assert.deepEqual(deviceHours(3600, { gpus: [gpu], cpuCores: 16 }, 'torch-cpu'), { kind: 'cpu', hours: 16 })
  assert.deepEqual(deviceHours(3600, { gpus: [gpu], cpuCores: 16 }, 'torch-cuda'), { kind: 'gpu', hours: 1 })
  // A CUDA claim from a machine that listed no GPU is not believed.
  assert.deepEqual(deviceHours(3600, { gpus: [], cpuCores: 4 }, 'torch-cuda'), { kind: 'cpu', hours: 4 })
  // Rows from before reports named an executor fall back to the hardware.
  assert.deepEqual(deviceHours(3600, { gpus: [gpu], cpuCores: 16 }, null), { kind: 'gpu', hours: 1 })
})

test('a row\'s credited cores fix its kind and its core count when it is written: a later profile changes neither', () => {
  const now = { gpus: [gpu, gpu], cpuCores: 4096 }
  // Credited 2 cores as CPU time: 2 core-hours an hour, whatever the node claims now.
  assert.deepEqual(deviceHours(3600, now, 'typescript', null, 2), { kind: 'cpu', hours: 2 })
  // A torch-cuda row judged CPU time (no GPU listed then) stays CPU time after a re-join listing GPUs.
  assert.deepEqual(deviceHours(3600, now, 'torch-cuda', null, 3), { kind: 'cpu', hours: 3 })
  // 0 cores: GPU time, even after a re-join that lists no GPU and thousands of cores.
  assert.deepEqual(deviceHours(3600, { gpus: [], cpuCores: 4096 }, 'torch-cuda', null, 0), { kind: 'gpu', hours: 1 })
  assert.deepEqual(deviceHours(3600, { gpus: [gpu, gpu, gpu, gpu], cpuCores: 8 }, 'torch-cuda', 4, 0), { kind: 'gpu', hours: 4 })
  // Its 4 credited GPUs stay 4 after a re-join that lists one (the count was held to the list when written).
  assert.deepEqual(deviceHours(3600, { gpus: [gpu], cpuCores: 8 }, 'torch-cuda', 4, 0), { kind: 'gpu', hours: 4 })
  // Rows from before the column (null) are judged by the profile, as before.
  assert.deepEqual(deviceHours(3600, { gpus: [], cpuCores: 8 }, 'typescript', null, null), { kind: 'cpu', hours: 8 })
})
