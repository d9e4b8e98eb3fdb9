import { test } from 'vitest'
import assert from 'node:assert/strict'
import { ChangeFeed, networkOf } from './change-feed.ts'
import type { ChangeBatch, ChangeEvent } from './change-feed.ts'

/** Waits (up to 5 s, however loaded the machine) until `done` holds. */
async function until (done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
}

test('a burst of changes reaches a live stream merged: each topic and run named once a message, at most one message a window; watchers see every change', async () => {
  const feed = new ChangeFeed({}, { batchMs: 100 })
  const controller = new AbortController()
  const stream = feed.subscribe(controller.signal, '198.51.100.1')
  const watched: ChangeEvent[] = []
  const received: ChangeBatch[] = []
  const reading = (async () => { for await (const batch of stream) received.push(batch) })().catch(() => {})
  const watching = (async () => { for await (const event of feed.watch(controller.signal)) watched.push(event) })().catch(() => {})
  await new Promise((resolve) => setImmediate(resolve))
  // 400 changes in one turn (peers coming and going, reports landing): one message.
  for (let i = 0; i < 200; i++) { feed.publish('nodes'); feed.publish('ledger', i % 2 === 0 ? 'run-a' : 'run-b') }
  await until(() => received.length >= 1)
  assert.equal(received.length, 1)
  assert.deepEqual(received[0]!.topics.sort(), ['ledger', 'nodes'])
  assert.deepEqual(received[0]!.runIds.sort(), ['run-a', 'run-b'])
  // More within the window wait for its end, merged again.
  for (let i = 0; i < 50; i++) feed.publish('runs', 'run-c')
  assert.equal(received.length, 1)
  await until(() => received.length >= 2)
  await new Promise((resolve) => setTimeout(resolve, 150))
  assert.equal(received.length, 2, 'nothing further came')
  assert.deepEqual(received[1], { topics: ['runs'], runIds: ['run-c'], at: received[1]!.at })
  assert.equal(watched.length, 450, 'the coordinator\'s own watchers get every change as it happens')
  controller.abort()
  await Promise.all([reading, watching])
  assert.equal(feed.listeners(), 0)
})

test('streams are capped per address and in total, refused before anything is held', () => {
  const feed = new ChangeFeed({ total: 3, perAddress: 2 })
  const controller = new AbortController()
  feed.subscribe(controller.signal, 'a')
  feed.subscribe(controller.signal, 'a')
  assert.throws(() => feed.subscribe(controller.signal, 'a'), /2 live streams are already open from your address \(at most 2\)/)
  feed.subscribe(controller.signal, 'b')
  assert.throws(() => feed.subscribe(controller.signal, 'c'), /already serves 3 live streams/)
  assert.equal(feed.listeners(), 3)
  controller.abort()
  assert.equal(feed.listeners(), 0)
})

test('streams are capped per network too: the /64s of one IPv6 /48 share a cap, and closing streams frees it', () => {
  const feed = new ChangeFeed({ total: 100, perAddress: 2, perNetwork: 3 })
  const controller = new AbortController()
  feed.subscribe(controller.signal, '2001:db8:1:1::/64')
  feed.subscribe(controller.signal, '2001:db8:1:2::/64')
  feed.subscribe(controller.signal, '2001:db8:1:3::/64')
  assert.throws(() => feed.subscribe(controller.signal, '2001:db8:1:4::/64'), /3 live streams are already open from your network \(at most 3\)/)
  // Another /48, and IPv4 addresses, are networks of their own.
  feed.subscribe(controller.signal, '2001:db8:2:1::/64')
  feed.subscribe(controller.signal, '198.51.100.7')
  assert.equal(networkOf('2001:db8:1:4::/64'), '2001:db8:1::/48')
  assert.equal(networkOf('198.51.100.7'), '198.51.100.7')
  controller.abort()
  feed.subscribe(undefined, '2001:db8:1:4::/64')
  assert.equal(feed.listeners(), 1)
})
