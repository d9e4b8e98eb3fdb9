import { test } from 'vitest'
import assert from 'node:assert/strict'
import { allocateDeliveries, fulfilmentOf } from './pledge-fulfilment.ts'
import type { AllocatablePledge, DeliveredRow } from './pledge-fulfilment.ts'

const LAB = 'lab'
const at = (minute: number): Date => new Date(Date.UTC(2026, 10, 23, 12, minute))
const pledge = (id: string, minute: number, amount: number, kind: AllocatablePledge['kind'] = 'gpu_hours', organizationId: string | null = LAB): AllocatablePledge =>
  ({ id, kind, amount, organizationId, createdAt: at(minute) })
const row = (seq: number, minute: number, hours: number, o: Partial<DeliveredRow> = {}): DeliveredRow =>
  ({ seq, createdAt: at(minute), organizationId: LAB, kind: 'gpu', hours, tokens: hours * 1000, ...o })

test('only rows written after the pledge count; earlier work is not the pledge’s', () => {
  const p = pledge('p', 10, 1)
  const alloc = allocateDeliveries([p], [row(1, 5, 0.6), row(2, 10, 0.3), row(3, 11, 0.25)])
  assert.deepEqual(alloc.get('p')!.map((a) => a.seq), [3])
  assert.deepEqual(fulfilmentOf(p, alloc.get('p')!), { delivered: 0.25, fraction: 0.25, fulfilled: false, fulfilledAt: null })
})

test('rows of other organizations and of the other device kind do not count', () => {
  const gpuPledge = pledge('g', 0, 5)
  const cpuPledge = pledge('c', 0, 5, 'cpu_core_hours')
  const rows = [row(1, 1, 1, { organizationId: 'other' }), row(2, 2, 1, { kind: 'cpu' }), row(3, 3, 1), row(4, 4, 1, { organizationId: null })]
  const alloc = allocateDeliveries([gpuPledge, cpuPledge], rows)
  assert.deepEqual(alloc.get('g')!.map((a) => a.seq), [3])
  assert.deepEqual(alloc.get('c')!.map((a) => a.seq), [2])
})

test('two pledges of one lab share rows oldest first; an hour is never counted twice', () => {
  const first = pledge('first', 0, 1)
  const second = pledge('second', 1, 1)
  const alloc = allocateDeliveries([second, first], [row(1, 2, 0.75), row(2, 3, 0.75), row(3, 4, 1)])
  assert.deepEqual(alloc.get('first')!.map((a) => [a.seq, a.hours]), [[1, 0.75], [2, 0.25]])
  assert.deepEqual(alloc.get('second')!.map((a) => [a.seq, a.hours]), [[2, 0.5], [3, 0.5]])
  const split = alloc.get('second')![0]!
  assert.equal(split.share, 0.5 / 0.75)
  assert.equal(split.tokens, 500)
  const done = fulfilmentOf(first, alloc.get('first')!)
  assert.equal(done.fulfilled, true)
  assert.equal(done.fulfilledAt, at(3).toISOString())
  assert.equal(fulfilmentOf(second, alloc.get('second')!).delivered, 1)
})

test('money pledges and pledges without an organization are never allocated compute', () => {
  const alloc = allocateDeliveries([pledge('usd', 0, 100, 'usd'), pledge('orphan', 0, 1, 'gpu_hours', null)], [row(1, 1, 1)])
  assert.deepEqual(alloc.get('usd'), [])
  assert.deepEqual(alloc.get('orphan'), [])
})
