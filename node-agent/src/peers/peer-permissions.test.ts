import { test } from 'vitest'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { PeerPermissions } from './peer-permissions.ts'
import type { QuestionBudget } from './peer-permissions.ts'
import { askerSource } from './block-server.ts'

const ROOMY: QuestionBudget = { maxInFlight: 100, perSecond: 1000, burst: 1000, sourcePerSecond: 1000, sourceBurst: 1000 }

test('the coordinator is asked once a minute per peer and blob, once for peers asking at once; a no and an error are remembered a few seconds', async () => {
  let now = 0
  const asked: string[] = []
  let failing = false
  const permissions = new PeerPermissions(async (sha, peer) => {
    asked.push(`${sha}/${peer}`)
    if (failing) throw new Error('coordinator unreachable')
    return peer === 'member'
  }, () => now, ROOMY)
  assert.deepEqual(await Promise.all([permissions.check('a', 'member', 's', true), permissions.check('a', 'member', 's', true)]), ['allowed', 'allowed'])
  assert.equal(await permissions.check('a', 'stranger', 's', true), 'refused')
  assert.deepEqual(asked, ['a/member', 'a/stranger'], 'one question each')
  now = 9_000
  assert.equal(await permissions.check('a', 'stranger', 's', true), 'refused')
  assert.equal(asked.length, 2, 'a no is remembered for a few seconds')
  now = 11_000
  assert.equal(await permissions.check('a', 'stranger', 's', true), 'refused')
  assert.equal(asked.length, 3, 'and asked again after them: the peer may have been handed a unit since')
  now = 59_000
  assert.equal(await permissions.check('a', 'member', 's', true), 'allowed')
  assert.equal(asked.length, 3, 'a yes is remembered within the minute')
  now = 61_000
  failing = true
  assert.equal(await permissions.check('a', 'member', 's', true), 'refused', 'asked again after a minute; unreachable refuses')
  failing = false
  assert.equal(await permissions.check('a', 'member', 's', true), 'refused', 'the failure is remembered a few seconds: a failing coordinator is not asked once per request')
  assert.equal(asked.length, 4)
  now = 67_000
  assert.equal(await permissions.check('a', 'member', 's', true), 'allowed', 'then asked again')
  assert.equal(asked.length, 5)
})

test('fresh peer ids cost a budget of questions, not one question each: past it askers are told busy, and one address cannot spend the others\' share', async () => {
  let now = 0
  let asked = 0
  let inFlight = 0
  let mostInFlight = 0
  const permissions = new PeerPermissions(async () => {
    asked++
    mostInFlight = Math.max(mostInFlight, ++inFlight)
    await new Promise((resolve) => setTimeout(resolve, 5))
    inFlight--
    return false
  }, () => now, { maxInFlight: 2, perSecond: 4, burst: 12, sourcePerSecond: 1, sourceBurst: 6 })
  // A stranger with a new identity for every request, all from one address, 20 at a time.
  const verdicts: string[] = []
  for (let round = 0; round < 10; round++) {
    verdicts.push(...await Promise.all(Array.from({ length: 20 }, async (_, i) => await permissions.check('a', `stranger-${round}-${i}`, 'ip4/203.0.113.9', true))))
  }
  assert.equal(verdicts.length, 200)
  assert.ok(asked <= 6, `one address spent its burst and no more: ${asked} questions`)
  assert.ok(mostInFlight <= 2, `at most 2 questions in flight, saw ${mostInFlight}`)
  assert.equal(verdicts.filter((v) => v === 'busy').length, 200 - asked)
  // Another address still has the rest of the budget.
  const other = await Promise.all(Array.from({ length: 2 }, async (_, i) => await permissions.check('a', `honest-${i}`, 'ip4/198.51.100.7', true)))
  assert.deepEqual(other, ['refused', 'refused'], 'asked, not busy')
  // Time refills the buckets, at their rates: one address gets 1 a second.
  const before = asked
  now = 10_000
  for (let i = 0; i < 30; i++) await permissions.check('a', `later-${i}`, 'ip4/203.0.113.9', true)
  assert.equal(asked - before, 6, 'ten seconds refill the address\'s burst of 6, no more')
  // Across many addresses, the whole budget holds: 4 a second after the burst.
  const start = asked
  for (let s = 0; s < 100; s++) await permissions.check('a', `p${s}`, `ip4/192.0.2.${s}`, true)
  assert.ok(asked - start <= 12, `the burst holds across addresses: ${asked - start}`)
})

test('a request about a blob this agent does not hold costs the same budget and asks nothing, so busy says nothing about what it holds; a peer the tracker named is not asked about', async () => {
  let asked = 0
  const permissions = new PeerPermissions(async () => { asked++; return true }, () => 0, { maxInFlight: 2, perSecond: 1, burst: 2, sourcePerSecond: 1, sourceBurst: 2 })
  assert.equal(await permissions.check('a', 'p1', 'x', false), 'refused')
  assert.equal(asked, 0)
  assert.equal(await permissions.check('a', 'p2', 'x', true), 'allowed')
  assert.equal(await permissions.check('a', 'p3', 'x', false), 'busy')
  assert.equal(await permissions.check('a', 'p3', 'x', true), 'busy')
  permissions.vouch('a', 'named')
  assert.equal(await permissions.check('a', 'named', 'x', true), 'allowed', 'the tracker named it for this blob')
  assert.equal(await permissions.check('b', 'named', 'x', true), 'busy', 'for that blob only')
  assert.equal(asked, 1)
})

test('a peer the coordinator revoked is forgotten: its remembered yes is dropped, it is asked about again, and a vouch does not bring it back for a while', async () => {
  let now = 0
  const asked: string[] = []
  const revoked = new Set<string>()
  const permissions = new PeerPermissions(async (sha, peer) => {
    asked.push(`${sha}/${peer}`)
    return !revoked.has(peer)
  }, () => now, ROOMY)
  assert.equal(await permissions.check('a', 'member', 's', true), 'allowed')
  assert.equal(await permissions.check('b', 'member', 's', true), 'allowed')
  assert.equal(await permissions.check('a', 'other', 's', true), 'allowed')
  permissions.vouch('c', 'member')
  assert.equal(asked.length, 3)
  now = 5_000
  revoked.add('member')
  assert.equal(await permissions.check('a', 'member', 's', true), 'allowed', 'until forgotten, the yes is remembered for a minute')
  assert.equal(asked.length, 3)

  assert.deepEqual(permissions.forget(['member']), ['member'])
  assert.equal(await permissions.check('a', 'member', 's', true), 'refused', 'asked again: the coordinator says no')
  assert.equal(await permissions.check('b', 'member', 's', true), 'refused', 'every blob\'s answer was dropped')
  assert.equal(await permissions.check('c', 'member', 's', true), 'refused', 'a vouch from before was dropped too')
  assert.deepEqual(asked.slice(3), ['a/member', 'b/member', 'c/member'])
  assert.equal(await permissions.check('a', 'other', 's', true), 'allowed', 'other peers keep their answers')
  assert.equal(asked.length, 6)

  // The tracker's answer may predate the revocation: its vouch is not trusted.
  now = 20_000
  permissions.vouch('d', 'member')
  assert.equal(await permissions.check('d', 'member', 's', true), 'refused', 'asked, not taken on the vouch')
  assert.equal(asked.at(-1), 'd/member')
  // The coordinator repeats the list each heartbeat: heard again, nothing is dropped or asked anew.
  assert.deepEqual(permissions.forget(['member']), [], 'already forgotten')
  assert.equal(await permissions.check('d', 'member', 's', true), 'refused')
  assert.equal(asked.length, 7, 'the no is still remembered')
  // A minute after the last listing a vouch counts again (the coordinator lists a revocation for minutes).
  now = 20_000 + 60_000
  permissions.vouch('e', 'member')
  assert.equal(await permissions.check('e', 'member', 's', true), 'allowed')
  assert.equal(asked.length, 7)
  assert.deepEqual(permissions.forget(['member', 'member']), ['member'], 'forgotten again once its time was up, named once')
})

test('a question in flight when its peer is forgotten is answered no: the coordinator\'s yes may predate the revocation', async () => {
  let answer: (yes: boolean) => void = () => {}
  const permissions = new PeerPermissions(async () => await new Promise<boolean>((resolve) => { answer = resolve }), () => 0, ROOMY)
  const pending = permissions.check('a', 'member', 's', true)
  const waiting = permissions.check('a', 'member', 's', true)
  await new Promise((resolve) => setImmediate(resolve))
  permissions.forget(['member'])
  answer(true)
  assert.deepEqual(await Promise.all([pending, waiting]), ['refused', 'refused'])
  assert.equal(permissions.asked, 1)
  const again = permissions.check('a', 'member', 's', true)
  assert.equal(await again, 'refused', 'remembered as a no')
  assert.equal(permissions.asked, 1)
})

test('an asker\'s source: its IPv4 address, its IPv6 /48, its peer id over the relay', async () => {
  const remotePeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const source = (addr: string): string => askerSource({ remoteAddr: multiaddr(addr), remotePeer })
  assert.equal(source('/ip4/203.0.113.9/tcp/4001'), 'ip4/203.0.113.9')
  assert.equal(source('/ip6/2001:db8:0:1::5/tcp/4001'), source('/ip6/2001:0db8:0000:0001:ffff::9/tcp/4002'), 'one /64')
  assert.equal(source('/ip6/2001:db8:0:1::5/tcp/4001'), source('/ip6/2001:db8:0:ffff::5/tcp/4001'), 'the /64s of one /48 share a budget')
  assert.equal(source('/ip6/2001:db8:0:1::5/tcp/4001'), 'ip6/2001:db8:0::/48')
  assert.notEqual(source('/ip6/2001:db8:0:1::5/tcp/4001'), source('/ip6/2001:db8:1:1::5/tcp/4001'), 'another /48')
  assert.equal(source('/ip6/::ffff:203.0.113.9/tcp/1'), 'ip6/203.0.113.9')
  assert.equal(source(`/ip4/198.51.100.1/tcp/4001/p2p/${remotePeer.toString()}/p2p-circuit`), `relayed/${remotePeer.toString()}`)
})
