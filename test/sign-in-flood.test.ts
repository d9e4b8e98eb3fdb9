// Sign-in floods against a real coordinator over HTTP, from the security review's proofs:
// guesses sent at once are throttled as guesses sent one by one are, failed sign-ins from one
// IPv6 /48 are limited together, and strangers filling the password checker do not turn the
// owner away where they usually sign in. --trust-proxy stands in for many source addresses:
// the key is the X-Forwarded-For entry.
import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Coordinator } from '@barnraise/coordinator'
import { tempDir } from './support/cluster.ts'
import { createTestDatabase } from './support/postgres.ts'

let coordinator: Coordinator
let database: { url: string, drop: () => Promise<void> }
beforeAll(async () => {
  database = await createTestDatabase()
  coordinator = await Coordinator.start({ dataDir: join(await tempDir('sign-in-flood'), 'install'), databaseUrl: database.url, httpPort: 0, p2pPort: 0, trustProxy: true })
  assert.equal((await call('auth.signUp', { email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', setupCode: coordinator.setupCode }, '192.0.2.1')).status, 200)
})
afterAll(async () => {
  await coordinator.stop()
  await database.drop()
})

/** A call from `from` (as a trusted proxy names it): its status, and what kind of 429 it was. */
async function call (path: string, body: unknown, from: string): Promise<{ status: number, answer: string }> {
  const res = await fetch(new URL(`trpc/${path}`, coordinator.url), {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', 'x-forwarded-for': from }
  })
  const text = await res.text()
  const kind = /too many sign-in attempts/.test(text) ? ' throttled' : /busy checking passwords/.test(text) ? ' busy' : ''
  return { status: res.status, answer: `${res.status}${kind}` }
}

const signIn = async (email: string, password: string, from: string): Promise<string> => (await call('auth.signIn', { email, password }, from)).answer

/** How many of `answers` were each answer. */
function tally (answers: string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const a of answers) counts[a] = (counts[a] ?? 0) + 1
  return counts
}

test('68 wrong guesses at one account from one address sent at once: 10 are checked, the rest throttled', async () => {
  await call('auth.signUp', { email: 'victim@example.org', password: 'correct-horse-1', displayName: 'Victim', role: 'funder' }, '203.0.113.50')
  const answers = await Promise.all(Array.from({ length: 68 }, async (_, i) => await signIn('victim@example.org', `guess-${i}`, '198.51.100.60')))
  assert.deepEqual(tally(answers), { 400: 10, '429 throttled': 58 })
  assert.equal(await signIn('victim@example.org', 'correct-horse-1', '198.51.100.60'), '429 throttled', 'held back there even with the right password')
  assert.equal(await signIn('victim@example.org', 'correct-horse-1', '203.0.113.50'), '200', 'but not where its owner signed up')
})

test('failed sign-ins from many /64s of one /48 are limited together; the owner signs in at a familiar address, in that /48 or elsewhere, while strangers fill the password checker', async () => {
  // A neighbour in the attacker's /48 and an owner elsewhere, each signed up where they sign in.
  for (const [email, from] of [['neighbour@example.org', '2001:db8:0:ffff::7'], ['owner@example.org', '198.51.100.7']] as const) {
    assert.equal((await call('auth.signUp', { email, password: 'correct-horse-1', displayName: 'Person', role: 'funder' }, from)).status, 200)
  }
  await call('auth.signUp', { email: 'newcomer@example.org', password: 'correct-horse-1', displayName: 'New', role: 'funder' }, '203.0.113.60')

  // Waves of 20 at once, two guesses at made-up emails from each /64: far under each /64's 30.
  const answers: string[] = []
  for (let wave = 0; wave < 8; wave++) {
    answers.push(...await Promise.all(Array.from({ length: 20 }, async (_, k) => {
      const i = wave * 20 + k
      return await signIn(`nobody-${i}@example.org`, 'whatever-123', `2001:db8:0:${Math.floor(i / 2).toString(16)}::1`)
    })))
  }
  assert.deepEqual(tally(answers), { 400: 100, '429 throttled': 60 }, 'the /48 had 100 failed sign-ins checked, no more')
  assert.equal(await signIn('newcomer@example.org', 'correct-horse-1', '2001:db8:0:beef::1'), '429 throttled', 'an account new to that /48 waits')
  assert.equal(await signIn('neighbour@example.org', 'correct-horse-1', '2001:db8:0:ffff::7'), '200', 'its owner at their usual /64 there does not')
  assert.equal(await signIn('nobody-x@example.org', 'whatever-123', '2001:db8:1:0::1'), '400', 'another /48 is checked')

  // A flood from many /48s (100 guesses each, two per /64) keeps the password checker's line full.
  let stop = false
  let next = 0
  const flood: string[] = []
  let busy!: () => void
  const sawBusy = new Promise<void>((resolve) => { busy = resolve })
  const attacker = async (): Promise<void> => {
    while (!stop) {
      const i = next++
      const answer = await signIn(`nobody-${i}@example.org`, 'whatever-123', `2001:db8:${(0x1000 + Math.floor(i / 100)).toString(16)}:${Math.floor(i % 100 / 2).toString(16)}::1`)
      flood.push(answer)
      if (answer === '429 busy') {
        busy()
        // Back soon, not at once: the line stays full without spinning this test's one thread.
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  }
  // More in flight than the strangers' 3 running and 48 waiting places.
  const attackers = Array.from({ length: 64 }, attacker)
  try {
    await sawBusy
    // Right after the checker turned a stranger away, and while more keep coming.
    const owner: string[] = []
    for (let k = 0; k < 3; k++) {
      owner.push(await signIn('owner@example.org', 'correct-horse-1', '198.51.100.7'))
      owner.push(await signIn('neighbour@example.org', 'correct-horse-1', '2001:db8:0:ffff::7'))
    }
    assert.deepEqual(owner, Array(6).fill('200'), 'every sign-in at a familiar address is answered')
  } finally {
    stop = true
    await Promise.all(attackers)
  }
  assert.ok(flood.filter((a) => a === '429 busy').length > 0 && flood.every((a) => ['400', '429 busy'].includes(a)), JSON.stringify(tally(flood)))
})
